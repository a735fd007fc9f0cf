//! The account files as grants, and what a change to them granted: who has uid 0
//! (`/etc/passwd`), who needs no password to log in (an empty password field in `/etc/passwd`
//! or `/etc/shadow`), who is a member of an administrators' group (`/etc/group`).
//!
//! Pure: the pipeline reads a file back after a write, rename or link onto it and hands the
//! text to [`AccountSnapshots::observe`], which compares it with the last text of the same file
//! in the same place (the host's `/etc`, a container's) and keeps the new one. Only names are
//! kept: a password field is looked at for being empty, never copied.

use std::{collections::BTreeSet, path::Path};

use serde::Serialize;

use super::bounded::FifoMap;

/// The groups whose members administer the system: `sudo` (Debian, Ubuntu), `wheel` (Red Hat,
/// SUSE, Arch, Alpine), `admin` (Ubuntu before 12.04, still honoured by its sudoers) and
/// `root`. `docker`, `lxd` and `disk` are root-equivalent too, but developers are put in them
/// every day; the command rule `privesc-privileged-group` names them when `usermod` does it.
pub const ADMIN_GROUPS: &[&str] = &["sudo", "wheel", "admin", "root"];

/// The largest account file read back. A bigger one is not read at all (a prefix would make
/// the names past it look removed, then added at the next read).
pub const MAX_ACCOUNT_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Names longer than this are cut here (a login name is at most 32 bytes; the file is the
/// writer's, and the name goes into a finding).
const MAX_NAME_BYTES: usize = 256;

/// At most this many grants of each kind are reported for one read (a file rewritten with
/// thousands of uid-0 lines is as bad with the first of them).
const MAX_GRANTS_PER_READ: usize = 32;

/// Places (the host's `/etc`, each container's) whose account files are remembered.
const MAX_PLACES: usize = 512;

/// An account file whose content the detector judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountFile {
    /// `/etc/passwd`: names, uids, and the password field (`x` when the hash is in shadow).
    Passwd,
    /// `/etc/shadow`: names and password hashes.
    Shadow,
    /// `/etc/group`: groups and their members.
    Group,
}

impl AccountFile {
    /// All of them, in the order the pipeline seeds them.
    pub const ALL: [Self; 3] = [Self::Passwd, Self::Shadow, Self::Group];

    /// The file's name in `/etc`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Passwd => "passwd",
            Self::Shadow => "shadow",
            Self::Group => "group",
        }
    }

    /// The account file at `path` (absolute, as the writer sees its root), if it is one.
    pub fn at(path: &Path) -> Option<Self> {
        let name = path.strip_prefix("/etc").ok()?.to_str()?;
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Where account files live: the device and inode of an `/etc` directory (the host's, or a
/// container's as its processes see it through `/proc/<pid>/root`).
pub type Place = (u64, u64);

/// An account that needs no password to log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Passwordless {
    /// The account's name.
    pub name: String,
    /// Whether the account has uid 0 (as `/etc/passwd` in the same place was last read).
    pub root: bool,
}

/// A member of an administrators' group ([`ADMIN_GROUPS`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminMember {
    /// The group.
    pub group: String,
    /// The member's name.
    pub member: String,
}

/// What a change to an account file granted that the file did not grant when last read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountChanges {
    /// Names newly given uid 0 (a second root account, or an account changed to uid 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub root_added: Vec<String>,
    /// Accounts that newly need no password.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passwordless_added: Vec<Passwordless>,
    /// Names newly in an administrators' group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admin_members_added: Vec<AdminMember>,
}

impl AccountChanges {
    /// Nothing was granted.
    pub fn is_empty(&self) -> bool {
        self.root_added.is_empty()
            && self.passwordless_added.is_empty()
            && self.admin_members_added.is_empty()
    }
}

/// What one place's files granted when last read; `None`: not read yet.
#[derive(Debug, Default)]
struct Grants {
    root: Option<BTreeSet<String>>,
    passwordless_passwd: Option<BTreeSet<String>>,
    passwordless_shadow: Option<BTreeSet<String>>,
    admin: Option<BTreeSet<AdminMember>>,
}

/// The account files of each place as last read: the host's, kept for good, and the
/// containers', the oldest forgotten past [`MAX_PLACES`].
#[derive(Debug)]
pub struct AccountSnapshots {
    host: Option<(Place, Grants)>,
    containers: FifoMap<Place, Grants>,
}

impl Default for AccountSnapshots {
    fn default() -> Self {
        Self {
            host: None,
            containers: FifoMap::new(MAX_PLACES),
        }
    }
}

impl AccountSnapshots {
    /// Takes `text` as what `file` grants on the host, whose `/etc` is `place` (read when the
    /// agent starts: what is there then is the host's own).
    pub fn seed_host(&mut self, place: Place, file: AccountFile, text: &str) {
        if self.host.as_ref().is_none_or(|(p, _)| *p != place) {
            self.host = Some((place, Grants::default()));
        }
        self.observe(place, file, text);
    }

    fn grants(&mut self, place: Place) -> &mut Grants {
        match &mut self.host {
            Some((p, grants)) if *p == place => grants,
            _ => self.containers.get_or_default(place),
        }
    }

    /// Compares `text`, the content of `file` in `place` read after a change, with the last
    /// read of the same file there, keeps it, and returns what it grants that the last did not.
    ///
    /// A file not read before in that place (a container's, first changed under watch): uid 0
    /// is compared with `root` alone; the empty passwords and the groups are only remembered
    /// (what an image ships is not a change).
    pub fn observe(&mut self, place: Place, file: AccountFile, text: &str) -> AccountChanges {
        let grants = self.grants(place);
        let mut changes = AccountChanges::default();
        match file {
            AccountFile::Passwd => {
                let (root, passwordless) = parse_passwd(text);
                let before = grants
                    .root
                    .take()
                    .unwrap_or_else(|| BTreeSet::from(["root".to_owned()]));
                changes.root_added = added(&before, &root);
                if let Some(before) = &grants.passwordless_passwd {
                    changes.passwordless_added = added(before, &passwordless)
                        .into_iter()
                        .map(|name| Passwordless {
                            root: root.contains(&name),
                            name,
                        })
                        .collect();
                }
                grants.root = Some(root);
                grants.passwordless_passwd = Some(passwordless);
            }
            AccountFile::Shadow => {
                let passwordless = parse_shadow(text);
                if let Some(before) = &grants.passwordless_shadow {
                    let root = grants.root.as_ref();
                    changes.passwordless_added = added(before, &passwordless)
                        .into_iter()
                        .map(|name| Passwordless {
                            root: root.map_or(name == "root", |r| r.contains(&name)),
                            name,
                        })
                        .collect();
                }
                grants.passwordless_shadow = Some(passwordless);
            }
            AccountFile::Group => {
                let admin = parse_group(text);
                if let Some(before) = &grants.admin {
                    changes.admin_members_added = added(before, &admin);
                }
                grants.admin = Some(admin);
            }
        }
        changes
    }
}

/// What `now` holds that `before` did not, at most [`MAX_GRANTS_PER_READ`].
fn added<T: Ord + Clone>(before: &BTreeSet<T>, now: &BTreeSet<T>) -> Vec<T> {
    now.difference(before)
        .take(MAX_GRANTS_PER_READ)
        .cloned()
        .collect()
}

/// The fields of an account-file line, or `None` for a blank line or a comment.
fn fields(line: &str) -> Option<Vec<&str>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.trim_start().starts_with('#') {
        return None;
    }
    Some(line.split(':').collect())
}

/// An account's name as the finding gives it: trimmed, at most [`MAX_NAME_BYTES`].
fn name_of(field: &str) -> Option<String> {
    let name = field.trim();
    if name.is_empty() {
        return None;
    }
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Some(name[..end].to_owned())
}

/// Whether a numeric id field reads as 0 the way `strtoul` reads it: spaces around it, a
/// sign, any number of zeros (`0`, `00`, ` 0`, `+0`).
fn is_zero_id(field: &str) -> bool {
    let digits = field.trim();
    let digits = digits
        .strip_prefix('+')
        .or_else(|| digits.strip_prefix('-'))
        .unwrap_or(digits);
    !digits.is_empty() && digits.bytes().all(|b| b == b'0')
}

/// `/etc/passwd`: the names with uid 0, and the names whose password field is empty (no
/// password asked). NIS compatibility lines: a `-name` line removes an account, never grants
/// one; a `+` line with uid 0 does (the old `+::0:0:::` backdoor), and its empty password
/// field means "the NIS one", not none.
pub fn parse_passwd(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut root = BTreeSet::new();
    let mut passwordless = BTreeSet::new();
    for f in text.lines().filter_map(fields) {
        let Some(name) = name_of(f[0]) else {
            continue;
        };
        if name.starts_with('-') || f.len() < 3 {
            continue;
        }
        if is_zero_id(f[2]) {
            root.insert(name.clone());
        }
        if f[1].is_empty() && !name.starts_with('+') {
            passwordless.insert(name);
        }
    }
    (root, passwordless)
}

/// `/etc/shadow`: the names whose password field is empty (no password asked; `!` and `*` are
/// locked, a hash is a password). The fields are not kept.
pub fn parse_shadow(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(fields)
        .filter(|f| f.len() >= 2 && f[1].is_empty())
        .filter_map(|f| name_of(f[0]))
        .filter(|name| !name.starts_with(['+', '-']))
        .collect()
}

/// `/etc/group`: the members of the administrators' groups ([`ADMIN_GROUPS`]).
pub fn parse_group(text: &str) -> BTreeSet<AdminMember> {
    let mut members = BTreeSet::new();
    for f in text.lines().filter_map(fields) {
        if f.len() < 4 {
            continue;
        }
        let group = f[0].trim();
        if !ADMIN_GROUPS.contains(&group) {
            continue;
        }
        for member in f[3].split(',').filter_map(name_of) {
            members.insert(AdminMember {
                group: group.to_owned(),
                member,
            });
        }
    }
    members
}

/// One entry of a POSIX access ACL (`system.posix_acl_access`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AclEntry {
    /// `userObj`, `user`, `groupObj`, `group`, `mask` or `other`.
    pub tag: &'static str,
    /// The uid or gid of a `user` or `group` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// Read 4, write 2, execute 1.
    pub perm: u16,
    /// A `group` entry's name, where the pipeline found one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Entries read of one ACL at most.
pub const MAX_ACL_ENTRIES: usize = 512;

/// The entries of a `system.posix_acl_access` value (a little-endian `u32` version 2, then
/// 8-byte entries: `u16` tag, `u16` permissions, `u32` id), at most [`MAX_ACL_ENTRIES`]; `None`
/// for another version or a length that is not a whole number of entries.
pub fn parse_posix_acl(value: &[u8]) -> Option<Vec<AclEntry>> {
    let (version, entries) = value.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != 2 || entries.len() % 8 != 0 {
        return None;
    }
    Some(
        entries
            .chunks_exact(8)
            .take(MAX_ACL_ENTRIES)
            .filter_map(|e| {
                let tag = u16::from_le_bytes([e[0], e[1]]);
                let perm = u16::from_le_bytes([e[2], e[3]]);
                let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
                let (tag, id) = match tag {
                    0x01 => ("userObj", None),
                    0x02 => ("user", Some(id)),
                    0x04 => ("groupObj", None),
                    0x08 => ("group", Some(id)),
                    0x10 => ("mask", None),
                    0x20 => ("other", None),
                    _ => return None,
                };
                Some(AclEntry {
                    tag,
                    id,
                    perm,
                    name: None,
                })
            })
            .collect(),
    )
}

/// The name of the group whose id is `gid` in `/etc/group`'s text (the first line that has
/// it), at most [`MAX_NAME_BYTES`].
pub fn group_name(text: &str, gid: u32) -> Option<String> {
    text.lines()
        .filter_map(fields)
        .find(|f| f.len() >= 3 && f[2].trim().parse::<u32>().is_ok_and(|g| g == gid))
        .and_then(|f| name_of(f[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posix_acl_value_read_entry_by_entry() {
        // setfacl -m u:65534:r,g:100:rw: user::rw- user:65534:r-- group::r-- group:100:rw-
        // mask::rw- other::---
        let mut value = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 4, 65534),
            (4, 4, u32::MAX),
            (8, 6, 100),
            (0x10, 6, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            value.extend(tag.to_le_bytes());
            value.extend(perm.to_le_bytes());
            value.extend(id.to_le_bytes());
        }
        let acl = parse_posix_acl(&value).expect("parsed");
        let tags: Vec<_> = acl.iter().map(|e| (e.tag, e.id, e.perm)).collect();
        assert_eq!(
            tags,
            [
                ("userObj", None, 6),
                ("user", Some(65534), 4),
                ("groupObj", None, 4),
                ("group", Some(100), 6),
                ("mask", None, 6),
                ("other", None, 0),
            ]
        );
        assert_eq!(
            parse_posix_acl(&value[..value.len() - 1]),
            None,
            "cut short"
        );
        assert_eq!(
            parse_posix_acl(&3u32.to_le_bytes()),
            None,
            "another version"
        );
        assert_eq!(parse_posix_acl(&[]), None);
        let mut many = 2u32.to_le_bytes().to_vec();
        for _ in 0..MAX_ACL_ENTRIES + 10 {
            many.extend([2, 0, 4, 0, 1, 0, 0, 0]);
        }
        assert_eq!(
            parse_posix_acl(&many).map(|a| a.len()),
            Some(MAX_ACL_ENTRIES)
        );
    }

    #[test]
    fn a_groups_name_by_its_id() {
        let text = "root:x:0:\n# shadow:x:7:\nshadow:x:42:\nusers:x:100:alice\nbad\n:x:5:\n";
        assert_eq!(group_name(text, 42).as_deref(), Some("shadow"));
        assert_eq!(group_name(text, 100).as_deref(), Some("users"));
        assert_eq!(group_name(text, 7), None, "a comment");
        assert_eq!(group_name(text, 5), None, "no name");
        assert_eq!(group_name(text, 1), None);
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn uid_zero_is_read_as_the_c_library_reads_it() {
        let cases: &[(&str, &[&str])] = &[
            ("root:x:0:0:root:/root:/bin/bash\n", &["root"]),
            (
                "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n",
                &["root", "toor"],
            ),
            // No trailing newline.
            (
                "root:x:0:0::/root:/bin/sh\nelx:x:0:0::/root:/bin/bash",
                &["elx", "root"],
            ),
            // CRLF.
            ("a:x:0:0::/:/bin/sh\r\n", &["a"]),
            // `00`, spaces, a sign: strtoul reads 0.
            (
                "a:x:00:0::/:/bin/sh\nb:x: 0 :0::/:/bin/sh\nc:x:+0:0::/:/bin/sh\n",
                &["a", "b", "c"],
            ),
            // Not zero.
            (
                "a:x:10:0::/:/bin/sh\nb:x:01:0::/:/bin/sh\nc:x::0::/:/bin/sh\nd:x:0x0:0:/:/bin/sh\n",
                &[],
            ),
            // Malformed lines: too few fields, no name, comments, blank.
            (
                "a:x\n:x:0:0::/:/bin/sh\n# c:x:0:0::/:/bin/sh\n\n   \nb\n",
                &[],
            ),
            // Short but with a uid field: counted (the C library is stricter; an attacker's
            // line is not shorter for that).
            ("a:x:0\n", &["a"]),
            // Duplicate names: one account.
            ("root:x:0:0::/:/bin/sh\nroot:x:0:0::/:/bin/sh\n", &["root"]),
            // NIS compatibility: `+::0:0:::` grants root, `-name` never does.
            ("+::0:0:::\n-toor:x:0:0::/:/bin/sh\n", &["+"]),
            // A name with spaces around it is the name.
            (" elx :x:0:0::/:/bin/sh\n", &["elx"]),
        ];
        for (text, want) in cases {
            assert_eq!(parse_passwd(text).0, names(want), "{text:?}");
        }
    }

    #[test]
    fn an_empty_password_field_is_no_password() {
        let (_, passwordless) = parse_passwd(
            "root:x:0:0::/root:/bin/sh\nnopw::1000:1000::/:/bin/sh\nlocked:*:1:1::/:/bin/sh\n\
             +::::::\n-gone::5:5::/:/bin/sh\nshort:\n",
        );
        assert_eq!(passwordless, names(&["nopw"]));
        let shadow = parse_shadow(
            "root:$6$salt$hash:19000:0:99999:7:::\nnopw::19000:0:99999:7:::\n\
             locked:!:19000::::::\nstar:*:19000::::::\nnew:!!:19000::::::\n+nis::1::::::\n\
             malformed\n# x::\n",
        );
        assert_eq!(shadow, names(&["nopw"]));
    }

    #[test]
    fn administrators_are_the_members_of_the_admin_groups() {
        let group = parse_group(
            "root:x:0:\nsudo:x:27:ann, bob ,,\nwheel:x:10:carl\nadm:x:4:syslog,ann\n\
             docker:x:999:dev\nadmin:x:115:\nsudo:x:27:dora\nbroken:sudo\nsudo\n",
        );
        let got: Vec<(&str, &str)> = group
            .iter()
            .map(|m| (m.group.as_str(), m.member.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("sudo", "ann"),
                ("sudo", "bob"),
                ("sudo", "dora"),
                ("wheel", "carl")
            ]
        );
    }

    #[test]
    fn huge_lines_and_names_are_cut_not_dropped() {
        let long = "a".repeat(100_000);
        let (root, _) = parse_passwd(&format!("{long}:x:0:0::/:/bin/sh\n"));
        assert_eq!(root.len(), 1);
        assert_eq!(root.iter().next().map(String::len), Some(MAX_NAME_BYTES));
        // A huge gecos field does not hide the uid.
        let (root, _) = parse_passwd(&format!("b:x:0:0:{long}:/:/bin/sh\n"));
        assert_eq!(root, names(&["b"]));
    }

    const HOST: Place = (8, 2);
    const CONTAINER: Place = (64, 9);

    #[test]
    fn a_change_is_what_the_last_read_did_not_grant() {
        let mut s = AccountSnapshots::default();
        let passwd = "root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\n";
        // The start: what is there is the host's own (toor).
        s.seed_host(
            HOST,
            AccountFile::Passwd,
            &format!("{passwd}toor:x:0:0::/:/bin/sh\n"),
        );
        s.seed_host(
            HOST,
            AccountFile::Shadow,
            "root:$6$h:1::::::\nann:!:1::::::\n",
        );
        s.seed_host(HOST, AccountFile::Group, "sudo:x:27:ann\n");
        // The same set rewritten (chfn, passwd, useradd of an ordinary user): nothing.
        let same =
            format!("{passwd}toor:x:0:0:The other root:/:/bin/sh\nzed:x:1001:1001::/:/bin/sh\n");
        assert!(s.observe(HOST, AccountFile::Passwd, &same).is_empty());
        assert!(
            s.observe(
                HOST,
                AccountFile::Shadow,
                "root:$6$other:1::::::\nann:!:1::::::\nzed:!:1::::::\n"
            )
            .is_empty()
        );
        // A uid-0 line appended; ann changed to uid 0.
        let changed = s.observe(
            HOST,
            AccountFile::Passwd,
            "root:x:0:0::/root:/bin/sh\nann:x:0:1000::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\nelx::0:0::/root:/bin/bash\n",
        );
        assert_eq!(changed.root_added, ["ann", "elx"]);
        assert_eq!(
            changed.passwordless_added,
            [Passwordless {
                name: "elx".into(),
                root: true
            }]
        );
        // Read again: already known.
        assert!(
            s.observe(
                HOST,
                AccountFile::Passwd,
                "root:x:0:0::/root:/bin/sh\nann:x:0:1000::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\nelx::0:0::/root:/bin/bash\n",
            )
            .is_empty()
        );
        // Removed, then added again: a new grant.
        s.observe(HOST, AccountFile::Passwd, passwd);
        assert_eq!(
            s.observe(
                HOST,
                AccountFile::Passwd,
                &format!("{passwd}elx:x:0:0::/:/bin/sh\n")
            )
            .root_added,
            ["elx"]
        );
        // A shadow password emptied: root's is High, ann's (now uid 0 no more) is not.
        let changed = s.observe(HOST, AccountFile::Shadow, "root::1::::::\nann::1::::::\n");
        assert_eq!(
            changed.passwordless_added,
            [
                Passwordless {
                    name: "ann".into(),
                    root: false
                },
                Passwordless {
                    name: "root".into(),
                    root: true
                }
            ]
        );
        // A member added to sudo, another to a group that is not an administrators'.
        let changed = s.observe(
            HOST,
            AccountFile::Group,
            "sudo:x:27:ann,zed\ndocker:x:9:zed\n",
        );
        assert_eq!(
            changed.admin_members_added,
            [AdminMember {
                group: "sudo".into(),
                member: "zed".into()
            }]
        );
        // Removed from the group: nothing.
        assert!(
            s.observe(HOST, AccountFile::Group, "sudo:x:27:ann\n")
                .is_empty()
        );
    }

    #[test]
    fn a_place_first_read_after_a_change_knows_only_root() {
        let mut s = AccountSnapshots::default();
        s.seed_host(
            HOST,
            AccountFile::Passwd,
            "root:x:0:0::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\n",
        );
        // A container's own file: toor is not the host's there.
        assert_eq!(
            s.observe(
                CONTAINER,
                AccountFile::Passwd,
                "root:x:0:0::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\n"
            )
            .root_added,
            ["toor"]
        );
        // Empty passwords and groups an image ships are remembered, not raised.
        assert!(
            s.observe(CONTAINER, AccountFile::Shadow, "root::1::::::\n")
                .is_empty()
        );
        assert!(
            s.observe(CONTAINER, AccountFile::Group, "wheel:x:10:root\n")
                .is_empty()
        );
        assert_eq!(
            s.observe(CONTAINER, AccountFile::Group, "wheel:x:10:root,app\n")
                .admin_members_added,
            [AdminMember {
                group: "wheel".into(),
                member: "app".into()
            }]
        );
    }

    #[test]
    fn account_files_are_known_by_their_path() {
        assert_eq!(
            AccountFile::at(Path::new("/etc/passwd")),
            Some(AccountFile::Passwd)
        );
        assert_eq!(
            AccountFile::at(Path::new("/etc/shadow")),
            Some(AccountFile::Shadow)
        );
        assert_eq!(
            AccountFile::at(Path::new("/etc/group")),
            Some(AccountFile::Group)
        );
        for other in [
            "/etc/passwd-",
            "/etc/gshadow",
            "/tmp/etc/passwd",
            "/etc/passwd/x",
            "passwd",
        ] {
            assert_eq!(AccountFile::at(Path::new(other)), None, "{other}");
        }
    }
}
