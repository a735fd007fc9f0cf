//! Kernel struct offsets resolved from BTF, so one eBPF object works across kernel builds.
//!
//! The eBPF programs read kernel structs by byte offset (see
//! [`node_agent_common::KernelOffsets`]). This module finds each offset in the running kernel's
//! BTF (`/sys/kernel/btf/vmlinux`), walking through anonymous struct and union members the way
//! the C compiler lays them out. A field the kernel lacks is not an error: it is set to
//! [`OFFSET_UNKNOWN`] and named in [`ResolvedOffsets::missing`], so the agent can report the
//! reduced coverage and keep running.

use std::{
    io,
    path::{Path, PathBuf},
};

use btf_rs::{Btf, BtfType, Type};
use node_agent_common::{KernelOffsets, config::OFFSET_UNKNOWN};

/// Where the running kernel exposes its own BTF.
pub const VMLINUX_BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// How deep anonymous members and type qualifiers are followed before giving up; real kernel
/// structs nest a handful of levels, a corrupt file could loop forever.
const MAX_NESTING: usize = 32;

/// The offsets found in a kernel's BTF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedOffsets {
    /// Every field of the kernel structs the programs read, [`OFFSET_UNKNOWN`] where the kernel
    /// lacks it.
    pub offsets: KernelOffsets,
    /// The fields that could not be resolved, as `struct.member[.member]` paths.
    pub missing: Vec<&'static str>,
}

/// Why the BTF could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BtfOffsetsError {
    /// The BTF file does not exist.
    #[error(
        "kernel BTF not found at {}: this kernel was built without CONFIG_DEBUG_INFO_BTF, so \
         Vigil cannot learn the layout of the kernel structs its sensors read; run the node \
         agent on a kernel built with BTF (CONFIG_DEBUG_INFO_BTF=y, Linux 5.8 or later, the \
         default on current distributions)",
        path.display()
    )]
    NotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The BTF file exists but could not be read.
    #[error("cannot read kernel BTF at {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid BTF.
    #[error("cannot parse kernel BTF in {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the BTF parser reported.
        #[source]
        source: btf_rs::Error,
    },
}

/// One offset to resolve: the struct, the member path inside it, and where the result goes.
struct FieldSpec {
    /// `struct.member` path reported in [`ResolvedOffsets::missing`].
    name: &'static str,
    /// Name of the outer struct.
    struct_name: &'static str,
    /// Named members to follow; each step may sit inside anonymous members.
    path: &'static [&'static str],
    /// The slot in [`KernelOffsets`].
    slot: fn(&mut KernelOffsets) -> &mut u32,
}

macro_rules! field {
    ($name:literal, $st:literal, [$($member:literal),+], $slot:ident) => {
        FieldSpec {
            name: $name,
            struct_name: $st,
            path: &[$($member),+],
            slot: |o: &mut KernelOffsets| &mut o.$slot,
        }
    };
}

/// Every field of [`KernelOffsets`], in declaration order.
const FIELDS: &[FieldSpec] = &[
    field!(
        "task_struct.real_parent",
        "task_struct",
        ["real_parent"],
        task_real_parent
    ),
    field!(
        "task_struct.group_leader",
        "task_struct",
        ["group_leader"],
        task_group_leader
    ),
    field!("task_struct.pid", "task_struct", ["pid"], task_pid),
    field!("task_struct.tgid", "task_struct", ["tgid"], task_tgid),
    field!(
        "task_struct.start_boottime",
        "task_struct",
        ["start_boottime"],
        task_start_boottime
    ),
    field!("task_struct.mm", "task_struct", ["mm"], task_mm),
    field!("task_struct.fs", "task_struct", ["fs"], task_fs),
    field!(
        "task_struct.nsproxy",
        "task_struct",
        ["nsproxy"],
        task_nsproxy
    ),
    field!(
        "task_struct.exit_code",
        "task_struct",
        ["exit_code"],
        task_exit_code
    ),
    field!(
        "mm_struct.arg_start",
        "mm_struct",
        ["arg_start"],
        mm_arg_start
    ),
    field!("mm_struct.arg_end", "mm_struct", ["arg_end"], mm_arg_end),
    field!("mm_struct.exe_file", "mm_struct", ["exe_file"], mm_exe_file),
    field!("file.f_inode", "file", ["f_inode"], file_inode),
    field!("inode.i_ino", "inode", ["i_ino"], inode_ino),
    field!("inode.i_sb", "inode", ["i_sb"], inode_sb),
    field!("super_block.s_dev", "super_block", ["s_dev"], sb_dev),
    field!("fs_struct.pwd", "fs_struct", ["pwd"], fs_pwd),
    field!("fs_struct.root", "fs_struct", ["root"], fs_root),
    field!("path.mnt", "path", ["mnt"], path_mnt),
    field!("path.dentry", "path", ["dentry"], path_dentry),
    field!("dentry.d_parent", "dentry", ["d_parent"], dentry_parent),
    field!(
        "dentry.d_name.name",
        "dentry",
        ["d_name", "name"],
        dentry_name
    ),
    field!(
        "dentry.d_name.len",
        "dentry",
        ["d_name", "len"],
        dentry_name_len
    ),
    field!("mount.mnt", "mount", ["mnt"], mount_mnt),
    field!("mount.mnt_parent", "mount", ["mnt_parent"], mount_parent),
    field!(
        "mount.mnt_mountpoint",
        "mount",
        ["mnt_mountpoint"],
        mount_mountpoint
    ),
    field!("vfsmount.mnt_root", "vfsmount", ["mnt_root"], vfsmount_root),
    // The root directory an exec'd image runs under (a chroot moves it): its inode and device.
    field!("dentry.d_inode", "dentry", ["d_inode"], dentry_inode),
    field!("vfsmount.mnt_sb", "vfsmount", ["mnt_sb"], vfsmount_sb),
    // Cgroups made in the unified hierarchy (`cgroup_mkdir`): which hierarchy, and the id.
    field!("cgroup.kn", "cgroup", ["kn"], cgroup_kn),
    field!("cgroup.root", "cgroup", ["root"], cgroup_root),
    field!(
        "cgroup_root.hierarchy_id",
        "cgroup_root",
        ["hierarchy_id"],
        cgroup_root_hierarchy_id
    ),
    field!("kernfs_node.id", "kernfs_node", ["id"], kernfs_node_id),
    field!("nsproxy.mnt_ns", "nsproxy", ["mnt_ns"], nsproxy_mnt_ns),
    field!(
        "nsproxy.pid_ns_for_children",
        "nsproxy",
        ["pid_ns_for_children"],
        nsproxy_pid_ns
    ),
    field!(
        "mnt_namespace.ns.inum",
        "mnt_namespace",
        ["ns", "inum"],
        mnt_ns_inum
    ),
    field!(
        "pid_namespace.ns.inum",
        "pid_namespace",
        ["ns", "inum"],
        pid_ns_inum
    ),
    field!(
        "linux_binprm.filename",
        "linux_binprm",
        ["filename"],
        bprm_filename
    ),
    field!("task_struct.cred", "task_struct", ["cred"], task_cred),
    field!("cred.euid", "cred", ["euid"], cred_euid),
    field!("cred.egid", "cred", ["egid"], cred_egid),
    field!("task_struct.files", "task_struct", ["files"], task_files),
    field!("files_struct.fdt", "files_struct", ["fdt"], files_fdt),
    field!("fdtable.fd", "fdtable", ["fd"], fdt_fd),
    field!("fdtable.max_fds", "fdtable", ["max_fds"], fdt_max_fds),
    field!("file.f_path", "file", ["f_path"], file_path),
    field!(
        "file.private_data",
        "file",
        ["private_data"],
        file_private_data
    ),
    field!("inode.i_mode", "inode", ["i_mode"], inode_mode),
    field!("inode.i_nlink", "inode", ["i_nlink"], inode_nlink),
    field!("socket.sk", "socket", ["sk"], socket_sk),
    field!("socket.type", "socket", ["type"], socket_type),
    field!(
        "sock.__sk_common.skc_family",
        "sock",
        ["__sk_common", "skc_family"],
        sk_family
    ),
    field!(
        "sock.__sk_common.skc_dport",
        "sock",
        ["__sk_common", "skc_dport"],
        sk_dport
    ),
    field!(
        "sock.__sk_common.skc_daddr",
        "sock",
        ["__sk_common", "skc_daddr"],
        sk_daddr
    ),
    field!(
        "sock.__sk_common.skc_v6_daddr",
        "sock",
        ["__sk_common", "skc_v6_daddr"],
        sk_v6_daddr
    ),
    field!(
        "mm_struct.env_start",
        "mm_struct",
        ["env_start"],
        mm_env_start
    ),
    field!("mm_struct.env_end", "mm_struct", ["env_end"], mm_env_end),
    field!("sock.sk_protocol", "sock", ["sk_protocol"], sk_protocol),
    // Syscall arguments in the saved user registers: x86-64 only (other architectures keep a
    // different layout; there the connect sensor uses its entry program instead).
    field!("pt_regs.di", "pt_regs", ["di"], regs_arg0),
    field!("pt_regs.si", "pt_regs", ["si"], regs_arg1),
    field!("pt_regs.dx", "pt_regs", ["dx"], regs_arg2),
    field!("task_struct.nvcsw", "task_struct", ["nvcsw"], task_nvcsw),
    field!("task_struct.nivcsw", "task_struct", ["nivcsw"], task_nivcsw),
    // Self-protection: the ids of the BPF objects behind another process's fds.
    field!("bpf_map.id", "bpf_map", ["id"], bpf_map_id),
    field!("bpf_prog.aux", "bpf_prog", ["aux"], bpf_prog_aux),
    field!("bpf_prog_aux.id", "bpf_prog_aux", ["id"], bpf_prog_aux_id),
    field!("bpf_link.id", "bpf_link", ["id"], bpf_link_id),
    field!("fdtable.open_fds", "fdtable", ["open_fds"], fdt_open_fds),
    // An executable's change time, for files the written-files map no longer holds.
    field!(
        "inode.i_ctime_sec",
        "inode",
        ["i_ctime_sec"],
        inode_ctime_sec
    ),
    field!(
        "inode.i_ctime_nsec",
        "inode",
        ["i_ctime_nsec"],
        inode_ctime_nsec
    ),
    field!(
        "pid_namespace.child_reaper",
        "pid_namespace",
        ["child_reaper"],
        pid_ns_child_reaper
    ),
    field!(
        "pid_namespace.level",
        "pid_namespace",
        ["level"],
        pid_ns_level
    ),
    field!(
        "pid_namespace.parent",
        "pid_namespace",
        ["parent"],
        pid_ns_parent
    ),
    // Renames of a thread (`task_rename`): whose, its name before, and from which syscall.
    field!("task_struct.flags", "task_struct", ["flags"], task_flags),
    field!("task_struct.comm", "task_struct", ["comm"], task_comm),
    field!("pt_regs.orig_ax", "pt_regs", ["orig_ax"], regs_syscall_nr),
    field!(
        "sock.sk_lock.owned",
        "sock",
        ["sk_lock", "owned"],
        sk_lock_owned
    ),
    // How a non-blocking connect's handshake ended (connect's exit, `tcp_receive_reset`).
    field!(
        "sock.__sk_common.skc_state",
        "sock",
        ["__sk_common", "skc_state"],
        sk_state
    ),
    field!("sock.sk_err", "sock", ["sk_err"], sk_err),
    // The memory file a read-only open returned: procfs, and whose (`/proc/<pid>/mem`).
    field!("super_block.s_magic", "super_block", ["s_magic"], sb_magic),
    field!("proc_inode.pid", "proc_inode", ["pid"], proc_inode_pid),
    field!(
        "proc_inode.vfs_inode",
        "proc_inode",
        ["vfs_inode"],
        proc_inode_vfs_inode
    ),
    field!("pid.tasks", "pid", ["tasks"], pid_tasks),
    field!("pid.numbers", "pid", ["numbers"], pid_numbers),
    field!(
        "task_struct.pid_links",
        "task_struct",
        ["pid_links"],
        task_pid_links
    ),
];

/// Older layouts of fields that kernels renamed: tried in order when the current name is absent.
/// The change time's seconds are the first member of a `timespec64`.
const OLDER_LAYOUTS: &[(&str, &str, &[&str])] = &[
    ("inode.i_ctime_sec", "inode", &["__i_ctime", "tv_sec"]),
    ("inode.i_ctime_sec", "inode", &["i_ctime", "tv_sec"]),
    ("inode.i_ctime_nsec", "inode", &["__i_ctime", "tv_nsec"]),
    ("inode.i_ctime_nsec", "inode", &["i_ctime", "tv_nsec"]),
];

/// Resolves every [`KernelOffsets`] field from the BTF file at `btf_path`.
pub fn resolve(btf_path: &Path) -> Result<ResolvedOffsets, BtfOffsetsError> {
    let btf = load(btf_path)?;
    Ok(resolve_from(&btf))
}

/// Resolves every [`KernelOffsets`] field from the running kernel's BTF
/// ([`VMLINUX_BTF_PATH`]).
pub fn resolve_running_kernel() -> Result<ResolvedOffsets, BtfOffsetsError> {
    resolve(Path::new(VMLINUX_BTF_PATH))
}

fn load(btf_path: &Path) -> Result<Btf, BtfOffsetsError> {
    // Read the bytes ourselves so a missing file gets the explanation it needs, an unreadable
    // one an I/O error, and everything the parser rejects a parse error naming the file.
    let bytes = std::fs::read(btf_path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            BtfOffsetsError::NotFound {
                path: btf_path.to_path_buf(),
            }
        } else {
            BtfOffsetsError::Read {
                path: btf_path.to_path_buf(),
                source,
            }
        }
    })?;
    Btf::from_bytes(&bytes).map_err(|source| BtfOffsetsError::Parse {
        path: btf_path.to_path_buf(),
        source,
    })
}

fn resolve_from(btf: &Btf) -> ResolvedOffsets {
    let mut offsets = KernelOffsets::UNKNOWN;
    let mut missing = Vec::new();
    for spec in FIELDS {
        let value = field_offset(btf, spec.struct_name, spec.path).unwrap_or(OFFSET_UNKNOWN);
        if value == OFFSET_UNKNOWN {
            missing.push(spec.name);
        }
        *(spec.slot)(&mut offsets) = value;
    }
    for (name, struct_name, path) in OLDER_LAYOUTS {
        let Some(i) = missing.iter().position(|m| m == name) else {
            continue;
        };
        let spec = FIELDS.iter().find(|f| f.name == *name);
        if let (Some(spec), Some(value)) = (spec, field_offset(btf, struct_name, path)) {
            *(spec.slot)(&mut offsets) = value;
            missing.remove(i);
        }
    }
    ResolvedOffsets { offsets, missing }
}

/// Finds the named struct with its members (not a forward declaration).
fn find_struct(btf: &Btf, name: &str) -> Option<btf_rs::Struct> {
    btf.resolve_types_by_name(name)
        .ok()?
        .into_iter()
        .find_map(|t| match t {
            Type::Struct(s) if !s.members.is_empty() => Some(s),
            _ => None,
        })
}

/// Byte offset of `path` inside `struct_name`, or `None` when any step is absent, is a
/// bitfield, or the offset does not fit the `u32` the programs use.
fn field_offset(btf: &Btf, struct_name: &str, path: &[&str]) -> Option<u32> {
    let mut current = find_struct(btf, struct_name)?;
    let mut total_bits: u64 = 0;
    for (i, step) in path.iter().enumerate() {
        let (bits, member) = find_member(btf, &current, step, 0)?;
        total_bits = total_bits.checked_add(bits)?;
        if i + 1 < path.len() {
            current = composite_of(btf, &member)?;
        }
    }
    if !total_bits.is_multiple_of(8) {
        return None;
    }
    let bytes = u32::try_from(total_bits / 8).ok()?;
    // OFFSET_UNKNOWN is reserved as the marker; a real offset can never be that large.
    (bytes != OFFSET_UNKNOWN).then_some(bytes)
}

/// Finds the member called `name` in `composite`, looking inside anonymous struct and union
/// members recursively. Returns its bit offset from the start of `composite` and the member.
fn find_member(
    btf: &Btf,
    composite: &btf_rs::Struct,
    name: &str,
    depth: usize,
) -> Option<(u64, btf_rs::Member)> {
    if depth > MAX_NESTING {
        return None;
    }
    // Named members first: a direct hit wins over one buried in an anonymous member.
    for member in &composite.members {
        if member.bitfield_size().is_some_and(|size| size != 0) {
            // A bitfield has no byte offset the programs could read.
            if member_name(btf, member).as_deref() == Some(name) {
                return None;
            }
            continue;
        }
        if member_name(btf, member).as_deref() == Some(name) {
            return Some((u64::from(member.bit_offset()), member.clone()));
        }
    }
    for member in &composite.members {
        if member.get_name_offset().is_some_and(|off| off != 0) {
            continue;
        }
        let Some(inner) = composite_of(btf, member) else {
            continue;
        };
        if let Some((bits, found)) = find_member(btf, &inner, name, depth + 1) {
            return Some((u64::from(member.bit_offset()) + bits, found));
        }
    }
    None
}

fn member_name(btf: &Btf, member: &btf_rs::Member) -> Option<String> {
    match member.get_name_offset() {
        None | Some(0) => None,
        Some(_) => btf.resolve_name(member).ok(),
    }
}

/// The struct or union a member's type is, through typedefs and qualifiers.
fn composite_of(btf: &Btf, member: &btf_rs::Member) -> Option<btf_rs::Struct> {
    let mut ty = btf.resolve_chained_type(member).ok()?;
    for _ in 0..MAX_NESTING {
        ty = match ty {
            Type::Struct(s) | Type::Union(s) => return Some(s),
            Type::Typedef(t) => btf.resolve_chained_type(&t).ok()?,
            Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => {
                btf.resolve_chained_type(&t).ok()?
            }
            Type::TypeTag(t) => btf.resolve_chained_type(&t).ok()?,
            _ => return None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn kernel_btf() -> &'static Btf {
        static BTF: OnceLock<Btf> = OnceLock::new();
        BTF.get_or_init(|| load(Path::new(VMLINUX_BTF_PATH)).expect("kernel BTF loads"))
    }

    fn offsets_as_array(o: &KernelOffsets) -> Vec<(&'static str, u32)> {
        let mut copy = *o;
        FIELDS
            .iter()
            .map(|spec| (spec.name, *(spec.slot)(&mut copy)))
            .collect()
    }

    #[test]
    fn every_offset_resolves_on_this_kernel() {
        let resolved = resolve_running_kernel().expect("resolve");
        assert!(
            resolved.missing.is_empty(),
            "missing: {:?}",
            resolved.missing
        );
        for (name, value) in offsets_as_array(&resolved.offsets) {
            assert_ne!(value, OFFSET_UNKNOWN, "{name}");
        }
    }

    #[test]
    fn fields_table_covers_every_kernel_offset() {
        // KernelOffsets is all u32s; a field added there must be added to FIELDS too.
        assert_eq!(
            FIELDS.len() * 4,
            size_of::<KernelOffsets>(),
            "FIELDS and KernelOffsets differ"
        );
        // Each slot is distinct: writing a different value through each shows up once.
        let mut o = KernelOffsets::UNKNOWN;
        for (i, spec) in FIELDS.iter().enumerate() {
            *(spec.slot)(&mut o) = i as u32;
        }
        let values: Vec<u32> = offsets_as_array(&o).into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, (0..FIELDS.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn tgid_follows_pid() {
        let o = resolve_from(kernel_btf()).offsets;
        // Both are pid_t, declared one after the other in task_struct.
        assert_eq!(o.task_tgid, o.task_pid + 4);
        // kuid_t euid; kgid_t egid; follow each other in struct cred.
        assert_eq!(o.cred_egid, o.cred_euid + 4);
    }

    #[test]
    fn offsets_lie_inside_their_struct() {
        let btf = kernel_btf();
        let o = resolve_from(btf).offsets;
        let mut copy = o;
        for spec in FIELDS {
            let size = find_struct(btf, spec.struct_name)
                .unwrap_or_else(|| panic!("struct {}", spec.struct_name))
                .size();
            let value = *(spec.slot)(&mut copy);
            // `pid.numbers` is a flexible array: it starts where the struct's size ends.
            let size = if spec.name == "pid.numbers" {
                size + 1
            } else {
                size
            };
            assert!(
                (value as usize) < size,
                "{} = {value} not below sizeof({}) = {size}",
                spec.name,
                spec.struct_name
            );
        }
    }

    #[test]
    fn nested_fields_add_the_inner_offset() {
        let btf = kernel_btf();
        let o = resolve_from(btf).offsets;
        let d_name = field_offset(btf, "dentry", &["d_name"]).expect("d_name");
        let qstr_name = field_offset(btf, "qstr", &["name"]).expect("qstr.name");
        // `name` sits after the hash/len union, so it is never at offset 0 of the qstr.
        assert!(qstr_name >= 8);
        assert_eq!(o.dentry_name, d_name + qstr_name);
        // `len` is inside an anonymous struct of the qstr's anonymous union.
        let qstr_len = field_offset(btf, "qstr", &["len"]).expect("qstr.len");
        assert_eq!(o.dentry_name_len, d_name + qstr_len);

        let ns = field_offset(btf, "pid_namespace", &["ns"]).expect("pid_namespace.ns");
        let inum = field_offset(btf, "ns_common", &["inum"]).expect("ns_common.inum");
        assert_eq!(o.pid_ns_inum, ns + inum);
    }

    #[test]
    fn arg_end_follows_arg_start() {
        let o = resolve_from(kernel_btf()).offsets;
        // unsigned long arg_start, arg_end; on one line in mm_struct.
        assert_eq!(o.mm_arg_end, o.mm_arg_start + 8);
    }

    #[test]
    fn absent_struct_and_member_are_none() {
        let btf = kernel_btf();
        assert_eq!(field_offset(btf, "no_such_struct_vigil", &["x"]), None);
        assert_eq!(
            field_offset(btf, "task_struct", &["no_such_member_vigil"]),
            None
        );
        // A path through a pointer member does not descend (the programs would need a read).
        assert_eq!(field_offset(btf, "task_struct", &["mm", "arg_start"]), None);
    }

    #[test]
    fn missing_file_names_the_cause_and_the_fix() {
        let path = Path::new("/nonexistent/vigil/vmlinux");
        let err = resolve(path).expect_err("missing file must fail");
        assert!(matches!(err, BtfOffsetsError::NotFound { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/vigil/vmlinux"), "{text}");
        assert!(text.contains("CONFIG_DEBUG_INFO_BTF"), "{text}");
        assert!(text.contains("5.8"), "{text}");
        assert!(!text.contains('\n'), "one paragraph: {text}");
    }

    #[test]
    fn garbage_file_is_a_parse_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("vigil-btf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("not-btf");
        std::fs::write(&path, b"this is not BTF at all, just text").expect("write");
        let err = resolve(&path).expect_err("garbage must fail");
        let text = err.to_string();
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(matches!(err, BtfOffsetsError::Parse { .. }), "{err:?}");
        assert!(text.contains("not-btf"), "{text}");
    }
}
