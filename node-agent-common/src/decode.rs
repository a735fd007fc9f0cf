//! Decoding ring-buffer records in place (user space only).

use core::mem::{align_of, size_of};

use crate::event::{
    ActivityEvent, DnsEvent, EventHeader, ExecEvent, ExitEvent, FileEvent, ForkEvent, NetEvent,
    StreamEvent, SyntheticEvent, TaskIdentity, kind,
};

/// Types that can be viewed from any properly sized and aligned bytes.
///
/// # Safety
/// Implementors are `#[repr(C)]`, made only of integers and integer arrays, with no padding
/// the compiler could add: every bit pattern is a valid value.
pub unsafe trait Plain: Copy + 'static {}

// SAFETY: each is #[repr(C)] of integers and byte arrays with explicit padding (see event.rs).
unsafe impl Plain for EventHeader {}
// SAFETY: as above.
unsafe impl Plain for TaskIdentity {}
// SAFETY: as above.
unsafe impl Plain for ExecEvent {}
// SAFETY: as above.
unsafe impl Plain for ForkEvent {}
// SAFETY: as above.
unsafe impl Plain for ExitEvent {}
// SAFETY: as above.
unsafe impl Plain for NetEvent {}
// SAFETY: as above.
unsafe impl Plain for DnsEvent {}
// SAFETY: as above.
unsafe impl Plain for SyntheticEvent {}
// SAFETY: as above.
unsafe impl Plain for StreamEvent {}
// SAFETY: as above.
unsafe impl Plain for FileEvent {}
// SAFETY: as above.
unsafe impl Plain for ActivityEvent {}

/// Views `bytes` as a `T` without copying, when they are long enough and aligned.
pub fn view<T: Plain>(bytes: &[u8]) -> Option<&T> {
    if bytes.len() < size_of::<T>() || bytes.as_ptr().align_offset(align_of::<T>()) != 0 {
        return None;
    }
    // SAFETY: length and alignment were checked, and T: Plain accepts any bit pattern.
    Some(unsafe { &*bytes.as_ptr().cast::<T>() })
}

/// The bytes of a record, for tests and replay files.
pub fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: T: Plain has no uninitialised padding; the slice covers exactly the value.
    unsafe { core::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A decoded record, borrowing the ring buffer's memory.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    /// [`kind::EXEC`]
    Exec(&'a ExecEvent),
    /// [`kind::FORK`]
    Fork(&'a ForkEvent),
    /// [`kind::EXIT`]
    Exit(&'a ExitEvent),
    /// [`kind::CONNECT`]
    Connect(&'a NetEvent),
    /// [`kind::ACCEPT`]
    Accept(&'a NetEvent),
    /// [`kind::CONNECT_OUTCOME`]
    ConnectOutcome(&'a NetEvent),
    /// [`kind::DNS`]
    Dns(&'a DnsEvent),
    /// [`kind::STREAM`]
    Stream(&'a StreamEvent),
    /// [`kind::FILE`]
    File(&'a FileEvent),
    /// [`kind::ACTIVITY`]
    Activity(&'a ActivityEvent),
    /// [`kind::SYNTHETIC`]
    Synthetic(&'a SyntheticEvent),
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a header, or misaligned memory.
    Short {
        /// Bytes available.
        len: usize,
    },
    /// The header names a kind this build does not know.
    UnknownKind {
        /// The kind found.
        kind: u16,
    },
    /// The header's size, or the bytes available, do not match the kind's struct.
    SizeMismatch {
        /// The kind found.
        kind: u16,
        /// The size the header claims.
        header_size: u32,
        /// Bytes available.
        len: usize,
        /// The struct's size.
        expected: usize,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Short { len } => write!(
                f,
                "record of {len} bytes is shorter than a header or misaligned"
            ),
            DecodeError::UnknownKind { kind } => write!(f, "unknown record kind {kind:#06x}"),
            DecodeError::SizeMismatch {
                kind,
                header_size,
                len,
                expected,
            } => write!(
                f,
                "record kind {kind:#06x}: header says {header_size} bytes, {len} available, struct is {expected}"
            ),
        }
    }
}

fn typed<'a, T: Plain>(bytes: &'a [u8], header: &EventHeader) -> Result<&'a T, DecodeError> {
    let expected = size_of::<T>();
    if header.size as usize != expected || bytes.len() < expected {
        return Err(DecodeError::SizeMismatch {
            kind: header.kind,
            header_size: header.size,
            len: bytes.len(),
            expected,
        });
    }
    view::<T>(bytes).ok_or(DecodeError::Short { len: bytes.len() })
}

/// Decodes one ring-buffer record in place.
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, DecodeError> {
    let header = view::<EventHeader>(bytes).ok_or(DecodeError::Short { len: bytes.len() })?;
    Ok(match header.kind {
        kind::EXEC => Record::Exec(typed(bytes, header)?),
        kind::FORK => Record::Fork(typed(bytes, header)?),
        kind::EXIT => Record::Exit(typed(bytes, header)?),
        kind::CONNECT => Record::Connect(typed(bytes, header)?),
        kind::ACCEPT => Record::Accept(typed(bytes, header)?),
        kind::CONNECT_OUTCOME => Record::ConnectOutcome(typed(bytes, header)?),
        kind::DNS => Record::Dns(typed(bytes, header)?),
        kind::STREAM => Record::Stream(typed(bytes, header)?),
        kind::FILE => Record::File(typed(bytes, header)?),
        kind::ACTIVITY => Record::Activity(typed(bytes, header)?),
        kind::SYNTHETIC => Record::Synthetic(typed(bytes, header)?),
        other => return Err(DecodeError::UnknownKind { kind: other }),
    })
}

/// The bytes of a NUL-padded C string field, up to its first NUL.
pub fn c_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::event::*;

    /// Copies a record into 8-aligned memory, as the ring buffer hands it out.
    fn aligned(bytes: &[u8]) -> Vec<u64> {
        let mut words = std::vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: words has at least bytes.len() bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            )
        };
        words
    }

    fn as_bytes(words: &[u64], len: usize) -> &[u8] {
        // SAFETY: the words hold at least len bytes.
        unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
    }

    fn task() -> TaskIdentity {
        let mut comm = [0u8; COMM_LEN];
        comm[..4].copy_from_slice(b"true");
        TaskIdentity {
            pid: 42,
            tgid: 42,
            ppid: 7,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            pid_ns: 4026531836,
            mnt_ns: 4026531841,
            _pad: 0,
            cgroup_id: 12345,
            start_time_ns: 99,
            comm,
        }
    }

    #[test]
    fn exec_round_trip() {
        let mut ev = ExecEvent {
            header: EventHeader {
                kind: kind::EXEC,
                _pad: 0,
                size: size_of::<ExecEvent>() as u32,
                ktime_ns: 5,
            },
            task: task(),
            exe_ino: 77,
            exe_dev: 8,
            flags: exec_flags::ARGV_TRUNCATED,
            argv_len: 8,
            filename_len: 9,
            cwd_len: 0,
            cwd_depth: 0,
            stdio_types: 0x0c_01_02,
            exe_nlink: 1,
            writer: WriterInfo {
                tgid: 9,
                uid: 0,
                time_ns: 3,
                comm: *b"cp\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            },
            exe_ctime_sec: 1_796_000_000,
            exe_ctime_nsec: 5,
            stdin_dev: 0,
            ns_init_start_ns: 11,
            stdin_ino: 0,
            stdio: [SocketPeer::default(); 3],
            stdio_pipes: [0, 4242],
            fd_pipes: [
                FdPipe {
                    fd: 63,
                    _pad: 0,
                    ino: 4243,
                },
                FdPipe::default(),
            ],
            ld_preload_len: 0,
            ld_library_path_len: 0,
            root_ino: 2,
            root_dev: 0x0fe0_0000,
            _pad_root: 0,
            exe_object: ExeObject {
                mnt: 0xffff_8880_0000_1000,
                dentry: 0xffff_8880_0000_2000,
                ctime_sec: 1_796_000_000,
                ctime_nsec: 5,
                _pad: 0,
            },
            filename: [0; FILENAME_LEN],
            cwd: [0; CWD_LEN],
            argv: [0; ARGV_LEN],
            ld_preload: [0; ENV_VALUE_LEN],
            ld_library_path: [0; ENV_VALUE_LEN],
        };
        ev.filename[..9].copy_from_slice(b"/bin/true");
        ev.argv[..8].copy_from_slice(b"true\0-v\0");
        let words = aligned(bytes_of(&ev));
        match decode(as_bytes(&words, size_of::<ExecEvent>())) {
            Ok(Record::Exec(back)) => {
                assert_eq!(*back, ev);
                assert_eq!(c_str(&back.filename), b"/bin/true");
                assert_eq!(c_str(&back.task.comm), b"true");
            }
            other => panic!("expected an exec record, got {other:?}"),
        }
    }

    #[test]
    fn net_round_trip_and_kind_dispatch() {
        let ev = NetEvent {
            header: EventHeader {
                kind: kind::ACCEPT,
                _pad: 0,
                size: size_of::<NetEvent>() as u32,
                ktime_ns: 1,
            },
            task: task(),
            ret: 5,
            fd: 3,
            family: family::INET6,
            sock_type: 1,
            protocol: 6,
            port: 8080,
            addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            unix_path_len: 0,
            repeats: 0,
            unix_path: [0; UNIX_PATH_LEN],
            outcome: 0,
        };
        let words = aligned(bytes_of(&ev));
        match decode(as_bytes(&words, size_of::<NetEvent>())) {
            Ok(Record::Accept(back)) => assert_eq!(*back, ev),
            other => panic!("expected an accept record, got {other:?}"),
        }
    }

    #[test]
    fn stream_round_trip() {
        let mut head = [0u8; STREAM_HEAD_LEN];
        let text = br#"{"id":1,"method":"mining.subscribe","params":[]}"#;
        head[..text.len()].copy_from_slice(text);
        let ev = StreamEvent {
            header: EventHeader {
                kind: kind::STREAM,
                _pad: 0,
                size: size_of::<StreamEvent>() as u32,
                ktime_ns: 2,
            },
            task: task(),
            cookie: 0x1234_5678_9abc,
            family: family::INET,
            local_port: 40000,
            remote_port: 3333,
            _pad: 0,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            segment: 1,
            flags: stream_flags::OWNER_UNKNOWN,
            payload_len: text.len() as u32,
            head_len: text.len() as u32,
            head,
        };
        let words = aligned(bytes_of(&ev));
        match decode(as_bytes(&words, size_of::<StreamEvent>())) {
            Ok(Record::Stream(back)) => assert_eq!(*back, ev),
            other => panic!("expected a stream record, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_records() {
        let ev = ExitEvent {
            header: EventHeader {
                kind: kind::EXIT,
                _pad: 0,
                size: 12,
                ktime_ns: 1,
            },
            task: task(),
            exit_code: 0,
            _pad: 0,
        };
        let words = aligned(bytes_of(&ev));
        let bytes = as_bytes(&words, size_of::<ExitEvent>());
        assert!(matches!(
            decode(bytes),
            Err(DecodeError::SizeMismatch {
                kind: kind::EXIT,
                ..
            })
        ));
        assert!(matches!(
            decode(&bytes[..8]),
            Err(DecodeError::Short { len: 8 })
        ));
        let unknown = ExitEvent {
            header: EventHeader {
                kind: 0x7fff,
                ..ev.header
            },
            ..ev
        };
        let words = aligned(bytes_of(&unknown));
        assert!(matches!(
            decode(as_bytes(&words, size_of::<ExitEvent>())),
            Err(DecodeError::UnknownKind { kind: 0x7fff })
        ));
    }
}
