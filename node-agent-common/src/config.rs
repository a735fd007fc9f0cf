//! Configuration that user space writes into the eBPF object before loading it.

use core::mem::size_of;

/// Marks an offset that the running kernel's BTF does not have; the eBPF side skips reads
/// that depend on it and leaves the field zero.
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

/// Byte offsets of the kernel struct fields the programs read, resolved in user space from
/// `/sys/kernel/btf/vmlinux` at start-up, so one eBPF object works across kernel builds.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.real_parent`
    pub task_real_parent: u32,
    /// `task_struct.group_leader`
    pub task_group_leader: u32,
    /// `task_struct.pid`
    pub task_pid: u32,
    /// `task_struct.tgid`
    pub task_tgid: u32,
    /// `task_struct.start_boottime`
    pub task_start_boottime: u32,
    /// `task_struct.mm`
    pub task_mm: u32,
    /// `task_struct.fs`
    pub task_fs: u32,
    /// `task_struct.nsproxy`
    pub task_nsproxy: u32,
    /// `task_struct.exit_code`
    pub task_exit_code: u32,
    /// `mm_struct.arg_start`
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end`
    pub mm_arg_end: u32,
    /// `mm_struct.exe_file`
    pub mm_exe_file: u32,
    /// `file.f_inode`
    pub file_inode: u32,
    /// `inode.i_ino`
    pub inode_ino: u32,
    /// `inode.i_sb`
    pub inode_sb: u32,
    /// `super_block.s_dev`
    pub sb_dev: u32,
    /// `fs_struct.pwd` (a `struct path`)
    pub fs_pwd: u32,
    /// `fs_struct.root` (a `struct path`)
    pub fs_root: u32,
    /// `path.mnt`
    pub path_mnt: u32,
    /// `path.dentry`
    pub path_dentry: u32,
    /// `dentry.d_parent`
    pub dentry_parent: u32,
    /// `dentry.d_name.name` (offset of the `name` pointer inside the dentry)
    pub dentry_name: u32,
    /// `dentry.d_name.len` (the name's length, inside the qstr's hash/len union)
    pub dentry_name_len: u32,
    /// `mount.mnt` (the embedded `vfsmount`)
    pub mount_mnt: u32,
    /// `mount.mnt_parent`
    pub mount_parent: u32,
    /// `mount.mnt_mountpoint`
    pub mount_mountpoint: u32,
    /// `vfsmount.mnt_root`
    pub vfsmount_root: u32,
    /// `nsproxy.mnt_ns`
    pub nsproxy_mnt_ns: u32,
    /// `nsproxy.pid_ns_for_children`
    pub nsproxy_pid_ns: u32,
    /// `mnt_namespace.ns.inum` (offset of `inum` inside the namespace struct)
    pub mnt_ns_inum: u32,
    /// `pid_namespace.ns.inum`
    pub pid_ns_inum: u32,
    /// `linux_binprm.filename`
    pub bprm_filename: u32,
    /// `task_struct.cred` (the effective credentials)
    pub task_cred: u32,
    /// `cred.euid`
    pub cred_euid: u32,
    /// `cred.egid`
    pub cred_egid: u32,
    /// `task_struct.files`
    pub task_files: u32,
    /// `files_struct.fdt`
    pub files_fdt: u32,
    /// `fdtable.fd`
    pub fdt_fd: u32,
    /// `fdtable.max_fds`
    pub fdt_max_fds: u32,
    /// `file.f_path`
    pub file_path: u32,
    /// `file.private_data`
    pub file_private_data: u32,
    /// `inode.i_mode`
    pub inode_mode: u32,
    /// `inode.i_nlink`
    pub inode_nlink: u32,
    /// `socket.sk`
    pub socket_sk: u32,
    /// `socket.type`
    pub socket_type: u32,
    /// `sock.__sk_common.skc_family`
    pub sk_family: u32,
    /// `sock.__sk_common.skc_dport`
    pub sk_dport: u32,
    /// `sock.__sk_common.skc_daddr`
    pub sk_daddr: u32,
    /// `sock.__sk_common.skc_v6_daddr`
    pub sk_v6_daddr: u32,
    /// `mm_struct.env_start`
    pub mm_env_start: u32,
    /// `mm_struct.env_end`
    pub mm_env_end: u32,
    /// `sock.sk_protocol`
    pub sk_protocol: u32,
    /// The saved user register holding a syscall's first argument (`pt_regs.di` on x86-64).
    pub regs_arg0: u32,
    /// The second argument's (`pt_regs.si`).
    pub regs_arg1: u32,
    /// The third argument's (`pt_regs.dx`).
    pub regs_arg2: u32,
    /// `task_struct.nvcsw` (voluntary context switches)
    pub task_nvcsw: u32,
    /// `task_struct.nivcsw` (involuntary context switches)
    pub task_nivcsw: u32,
    /// `bpf_map.id`
    pub bpf_map_id: u32,
    /// `bpf_prog.aux`
    pub bpf_prog_aux: u32,
    /// `bpf_prog_aux.id`
    pub bpf_prog_aux_id: u32,
    /// `bpf_link.id`
    pub bpf_link_id: u32,
    /// `fdtable.open_fds` (the bitmap of open file descriptors)
    pub fdt_open_fds: u32,
    /// The seconds of an inode's change time: `inode.i_ctime_sec` (Linux 6.11 and later),
    /// `inode.__i_ctime.tv_sec` (6.6 to 6.10) or `inode.i_ctime.tv_sec` (before).
    pub inode_ctime_sec: u32,
    /// The nanoseconds of an inode's change time: `inode.i_ctime_nsec`, or `tv_nsec` of the
    /// older layouts' `timespec64`.
    pub inode_ctime_nsec: u32,
    /// `pid_namespace.child_reaper`: the namespace's init.
    pub pid_ns_child_reaper: u32,
    /// `pid_namespace.level`: 0 for the host's, 1 for a container's, more when nested.
    pub pid_ns_level: u32,
    /// `pid_namespace.parent`
    pub pid_ns_parent: u32,
    /// `task_struct.flags` (`PF_KTHREAD`: a kernel thread)
    pub task_flags: u32,
    /// `task_struct.comm`
    pub task_comm: u32,
    /// `pt_regs.orig_ax`: the number of the syscall a task is in (x86-64 only, as `regs_arg0`).
    pub regs_syscall_nr: u32,
    /// `sock.sk_lock.owned`
    pub sk_lock_owned: u32,
    /// `sock.__sk_common.skc_state` (one byte: `TCP_SYN_SENT`, `TCP_CLOSE`, ...)
    pub sk_state: u32,
    /// `sock.sk_err`: the error a failed handshake left (`ECONNREFUSED`, `ETIMEDOUT`)
    pub sk_err: u32,
    /// `super_block.s_magic`: tells procfs (`PROC_SUPER_MAGIC`), tmpfs and ramfs from other file
    /// systems.
    pub sb_magic: u32,
    /// `proc_inode.pid`: the process a procfs inode is about (`struct pid *`).
    pub proc_inode_pid: u32,
    /// `proc_inode.vfs_inode`: where the VFS inode sits in procfs's own inode.
    pub proc_inode_vfs_inode: u32,
    /// `pid.tasks` (`tasks[PIDTYPE_PID].first`: the task that has the pid).
    pub pid_tasks: u32,
    /// `pid.numbers` (`numbers[0].nr`: the pid in the initial pid namespace).
    pub pid_numbers: u32,
    /// `task_struct.pid_links` (`pid_links[PIDTYPE_PID]`: the node in `pid.tasks`).
    pub task_pid_links: u32,
    /// `dentry.d_inode`
    pub dentry_inode: u32,
    /// `vfsmount.mnt_sb`
    pub vfsmount_sb: u32,
    /// `cgroup.kn` (the cgroup's directory, `struct kernfs_node *`).
    pub cgroup_kn: u32,
    /// `cgroup.root` (its hierarchy, `struct cgroup_root *`).
    pub cgroup_root: u32,
    /// `cgroup_root.hierarchy_id` (0: the unified, cgroup v2, hierarchy).
    pub cgroup_root_hierarchy_id: u32,
    /// `kernfs_node.id` (a cgroup's id, what `bpf_get_current_cgroup_id` returns).
    pub kernfs_node_id: u32,
}

impl KernelOffsets {
    /// Every offset unknown: the programs still run and report what needs no offsets.
    pub const UNKNOWN: Self = Self {
        task_real_parent: OFFSET_UNKNOWN,
        task_group_leader: OFFSET_UNKNOWN,
        task_pid: OFFSET_UNKNOWN,
        task_tgid: OFFSET_UNKNOWN,
        task_start_boottime: OFFSET_UNKNOWN,
        task_mm: OFFSET_UNKNOWN,
        task_fs: OFFSET_UNKNOWN,
        task_nsproxy: OFFSET_UNKNOWN,
        task_exit_code: OFFSET_UNKNOWN,
        mm_arg_start: OFFSET_UNKNOWN,
        mm_arg_end: OFFSET_UNKNOWN,
        mm_exe_file: OFFSET_UNKNOWN,
        file_inode: OFFSET_UNKNOWN,
        inode_ino: OFFSET_UNKNOWN,
        inode_sb: OFFSET_UNKNOWN,
        sb_dev: OFFSET_UNKNOWN,
        fs_pwd: OFFSET_UNKNOWN,
        fs_root: OFFSET_UNKNOWN,
        path_mnt: OFFSET_UNKNOWN,
        path_dentry: OFFSET_UNKNOWN,
        dentry_parent: OFFSET_UNKNOWN,
        dentry_name: OFFSET_UNKNOWN,
        dentry_name_len: OFFSET_UNKNOWN,
        mount_mnt: OFFSET_UNKNOWN,
        mount_parent: OFFSET_UNKNOWN,
        mount_mountpoint: OFFSET_UNKNOWN,
        vfsmount_root: OFFSET_UNKNOWN,
        nsproxy_mnt_ns: OFFSET_UNKNOWN,
        nsproxy_pid_ns: OFFSET_UNKNOWN,
        mnt_ns_inum: OFFSET_UNKNOWN,
        pid_ns_inum: OFFSET_UNKNOWN,
        bprm_filename: OFFSET_UNKNOWN,
        task_cred: OFFSET_UNKNOWN,
        cred_euid: OFFSET_UNKNOWN,
        cred_egid: OFFSET_UNKNOWN,
        task_files: OFFSET_UNKNOWN,
        files_fdt: OFFSET_UNKNOWN,
        fdt_fd: OFFSET_UNKNOWN,
        fdt_max_fds: OFFSET_UNKNOWN,
        file_path: OFFSET_UNKNOWN,
        file_private_data: OFFSET_UNKNOWN,
        inode_mode: OFFSET_UNKNOWN,
        inode_nlink: OFFSET_UNKNOWN,
        socket_sk: OFFSET_UNKNOWN,
        socket_type: OFFSET_UNKNOWN,
        sk_family: OFFSET_UNKNOWN,
        sk_dport: OFFSET_UNKNOWN,
        sk_daddr: OFFSET_UNKNOWN,
        sk_v6_daddr: OFFSET_UNKNOWN,
        mm_env_start: OFFSET_UNKNOWN,
        mm_env_end: OFFSET_UNKNOWN,
        sk_protocol: OFFSET_UNKNOWN,
        regs_arg0: OFFSET_UNKNOWN,
        regs_arg1: OFFSET_UNKNOWN,
        regs_arg2: OFFSET_UNKNOWN,
        task_nvcsw: OFFSET_UNKNOWN,
        task_nivcsw: OFFSET_UNKNOWN,
        bpf_map_id: OFFSET_UNKNOWN,
        bpf_prog_aux: OFFSET_UNKNOWN,
        bpf_prog_aux_id: OFFSET_UNKNOWN,
        bpf_link_id: OFFSET_UNKNOWN,
        fdt_open_fds: OFFSET_UNKNOWN,
        inode_ctime_sec: OFFSET_UNKNOWN,
        inode_ctime_nsec: OFFSET_UNKNOWN,
        pid_ns_child_reaper: OFFSET_UNKNOWN,
        pid_ns_level: OFFSET_UNKNOWN,
        pid_ns_parent: OFFSET_UNKNOWN,
        task_flags: OFFSET_UNKNOWN,
        task_comm: OFFSET_UNKNOWN,
        regs_syscall_nr: OFFSET_UNKNOWN,
        sk_lock_owned: OFFSET_UNKNOWN,
        sk_state: OFFSET_UNKNOWN,
        sk_err: OFFSET_UNKNOWN,
        sb_magic: OFFSET_UNKNOWN,
        proc_inode_pid: OFFSET_UNKNOWN,
        proc_inode_vfs_inode: OFFSET_UNKNOWN,
        pid_tasks: OFFSET_UNKNOWN,
        pid_numbers: OFFSET_UNKNOWN,
        task_pid_links: OFFSET_UNKNOWN,
        dentry_inode: OFFSET_UNKNOWN,
        vfsmount_sb: OFFSET_UNKNOWN,
        cgroup_kn: OFFSET_UNKNOWN,
        cgroup_root: OFFSET_UNKNOWN,
        cgroup_root_hierarchy_id: OFFSET_UNKNOWN,
        kernfs_node_id: OFFSET_UNKNOWN,
    };
}

/// The agent's settings as the eBPF programs see them (the global `VIGIL_CONFIG`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The secret of the agent's identity marker: the agent calls `bpf(MARKER_BPF_CMD,
    /// marker_nonce, 0)` once at start and the marker program records the calling process, in
    /// the kernel's own numbering, as the agent (`AgentIdentity`). The agent's own pid is no
    /// use for that in a pid namespace.
    pub marker_nonce: u64,
    /// Wake the reader once this many bytes wait in the ring buffer; below it records are
    /// submitted without a wake-up and the reader picks them up on its next timed poll.
    pub wakeup_bytes: u32,
    /// Benchmark only: the process whose `getpgid(2)` calls make the synthetic program emit a
    /// burst of records. 0 (the default) keeps that program inert.
    pub bench_tgid: u32,
    /// Repeats of one connection (the same process, peer, port, protocol and result) within
    /// this many milliseconds of its last record are counted in the kernel instead of sent
    /// (see `NetEvent::repeats`); 0 sends every one.
    pub repeat_window_ms: u32,
    /// Kernel struct offsets (an odd number of `u32`s: with the three above, `start_realtime_sec`
    /// falls on an 8-byte boundary and the struct has no padding).
    pub offsets: KernelOffsets,
    /// When the agent started, in seconds of the real-time clock: an executable whose inode
    /// changed since then and that the written-files map does not hold has its change time
    /// reported (`ExecEvent::exe_ctime_sec`); 0 reports none.
    pub start_realtime_sec: u64,
    /// Which ring buffer a record goes to: `EVENTS<cpu & ring_mask>`, the ring count less one
    /// (a power of two, at most [`crate::maps::MAX_RINGS`]; see `crate::maps`). 0: every
    /// record goes to `EVENTS0`.
    pub ring_mask: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
}

impl AgentConfig {
    /// What the object holds before user space writes the real values.
    pub const DEFAULT: Self = Self {
        marker_nonce: 0,
        wakeup_bytes: 0,
        bench_tgid: 0,
        repeat_window_ms: 0,
        offsets: KernelOffsets::UNKNOWN,
        start_realtime_sec: 0,
        ring_mask: 0,
        _pad: 0,
    };
}

const _: () = assert!(size_of::<AgentConfig>() == 20 + 85 * 4 + 8 + 8);

/// The `bpf(2)` command number of the agent's identity marker: no real command has it, so the
/// kernel answers `EINVAL` after the marker program has seen the call.
pub const MARKER_BPF_CMD: u64 = 0x5649_4731;

/// Who the agent is, in the kernel's (initial pid namespace's) numbering: the one entry of the
/// `AGENT` map, written by the marker program, read by every program to filter the agent's own
/// tasks and by the self-protection programs to see what is aimed at the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The agent's process id (thread-group id); 0 while unknown.
    pub tgid: u32,
    /// Its parent's process id when it started.
    pub ppid: u32,
    /// When the agent's process started, ns since boot.
    pub start_time_ns: u64,
}

const _: () = assert!(size_of::<AgentIdentity>() == 16);

// SAFETY: #[repr(C)] of integers without padding, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AgentIdentity {}

// SAFETY: #[repr(C)] of u32 fields only: no padding, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AgentConfig {}
