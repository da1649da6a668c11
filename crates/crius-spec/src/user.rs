//! Resolving the container user against the rootfs's `/etc/passwd` and `/etc/group`.

use std::path::{Component, Path, PathBuf};

use k8s_cri::v1::{LinuxContainerSecurityContext, SupplementalGroupsPolicy};

use crate::error::{Result, SpecError};
use crate::types::ResolvedUser;

/// How many symlinks [`resolve_in_root`] follows before giving up (as the kernel's ELOOP).
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` as if `root` were `/`: every symlink met on the way (absolute or relative,
/// including `..`) is interpreted inside `root`, so the result never leaves `root`. The final
/// component is resolved too. Components that do not exist are appended as they are.
pub fn resolve_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    // Components still to walk, in reverse order (a stack).
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(resolved.iter());
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("too many symlinks resolving {}", path.display()),
                    ));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                push_components(&mut pending, &target);
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(resolved.iter());
    Ok(out)
}

/// Pushes the normal and `..` components of `path` onto `stack` so that they pop in order.
fn push_components(stack: &mut Vec<std::ffi::OsString>, path: &Path) {
    let parts: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Reads a file of the rootfs (e.g. `etc/passwd`) without following symlinks out of it.
/// A missing file reads as `None`.
fn read_in_root(root: &Path, path: &str) -> Result<(PathBuf, Option<String>)> {
    let file = resolve_in_root(root, Path::new(path)).map_err(|source| SpecError::ReadFile {
        path: root.join(path),
        source,
    })?;
    match std::fs::read(&file) {
        Ok(bytes) => Ok((file, Some(String::from_utf8_lossy(&bytes).into_owned()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((file, None)),
        Err(source) => Err(SpecError::ReadFile { path: file, source }),
    }
}

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn id_from_i64(field: &str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| SpecError::field(field, format!("{value} is not a valid id")))
}

/// The user requested by the CRI security context or the image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UserSpec {
    Uid(u32),
    Name(String),
}

/// The group requested by the CRI security context or the image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupSpec {
    Gid(u32),
    Name(String),
}

fn parse_image_user(user: &str) -> (UserSpec, Option<GroupSpec>) {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = match u.parse::<u32>() {
        Ok(uid) => UserSpec::Uid(uid),
        Err(_) if u.is_empty() => UserSpec::Uid(0),
        Err(_) => UserSpec::Name(u.to_string()),
    };
    let g = g.filter(|g| !g.is_empty()).map(|g| match g.parse::<u32>() {
        Ok(gid) => GroupSpec::Gid(gid),
        Err(_) => GroupSpec::Name(g.to_string()),
    });
    (u, g)
}

/// Resolves the container's user: `run_as_user` / `run_as_username` / `run_as_group` from the
/// security context, else the image's `User` (`uid`, `name`, `uid:gid`, `name:group`), against
/// the rootfs's `/etc/passwd` and `/etc/group`.
///
/// The primary GID defaults to the user's group in `/etc/passwd` (0 for a UID not listed).
/// `additional_gids` holds the primary GID first, then (policy Merge, the default) the groups
/// of `/etc/group` that list the user, then the CRI `supplemental_groups`, deduplicated. With
/// policy Strict `/etc/group` is ignored: only the primary GID and the CRI groups remain.
/// An unknown policy value is InvalidArgument.
pub fn resolve_user(
    rootfs: &Path,
    sc: Option<&LinuxContainerSecurityContext>,
    image_user: Option<&str>,
) -> Result<ResolvedUser> {
    let (user, mut group) = match sc {
        Some(sc) if sc.run_as_user.is_some() => (
            UserSpec::Uid(id_from_i64(
                "linux.security_context.run_as_user",
                sc.run_as_user.as_ref().map(|v| v.value).unwrap_or_default(),
            )?),
            None,
        ),
        Some(sc) if !sc.run_as_username.is_empty() => {
            (UserSpec::Name(sc.run_as_username.clone()), None)
        }
        _ => {
            if sc.and_then(|sc| sc.run_as_group.as_ref()).is_some() {
                return Err(SpecError::field(
                    "linux.security_context.run_as_group",
                    "run_as_group requires run_as_user or run_as_username",
                ));
            }
            parse_image_user(image_user.unwrap_or("").trim())
        }
    };
    if let Some(g) = sc.and_then(|sc| sc.run_as_group.as_ref()) {
        group = Some(GroupSpec::Gid(id_from_i64(
            "linux.security_context.run_as_group",
            g.value,
        )?));
    }

    let (passwd_path, passwd) = read_in_root(rootfs, "etc/passwd")?;
    let passwd = passwd.as_deref().map(parse_passwd).unwrap_or_default();
    let entry = match &user {
        UserSpec::Uid(uid) => passwd.iter().find(|e| e.uid == *uid).cloned(),
        UserSpec::Name(name) => Some(
            passwd
                .iter()
                .find(|e| &e.name == name)
                .cloned()
                .ok_or_else(|| SpecError::UnknownUser {
                    user: name.clone(),
                    file: passwd_path.clone(),
                })?,
        ),
    };
    let uid = match (&user, &entry) {
        (UserSpec::Uid(uid), _) => *uid,
        (UserSpec::Name(_), Some(e)) => e.uid,
        (UserSpec::Name(_), None) => 0,
    };

    let (group_path, groups) = read_in_root(rootfs, "etc/group")?;
    let groups = groups.as_deref().map(parse_group).unwrap_or_default();
    let gid = match &group {
        Some(GroupSpec::Gid(gid)) => *gid,
        Some(GroupSpec::Name(name)) => groups
            .iter()
            .find(|g| &g.name == name)
            .map(|g| g.gid)
            .ok_or_else(|| SpecError::UnknownGroup {
                group: name.clone(),
                file: group_path.clone(),
            })?,
        None => entry.as_ref().map(|e| e.gid).unwrap_or(0),
    };

    let policy = match sc.map(|sc| sc.supplemental_groups_policy).unwrap_or(0) {
        p if p == SupplementalGroupsPolicy::Merge as i32 => SupplementalGroupsPolicy::Merge,
        p if p == SupplementalGroupsPolicy::Strict as i32 => SupplementalGroupsPolicy::Strict,
        p => {
            return Err(SpecError::field(
                "linux.security_context.supplemental_groups_policy",
                format!("unknown value {p}"),
            ))
        }
    };
    let strict = policy == SupplementalGroupsPolicy::Strict;
    let mut additional = vec![gid];
    if !strict {
        if let Some(name) = entry.as_ref().map(|e| &e.name) {
            additional.extend(
                groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == name))
                    .map(|g| g.gid),
            );
        }
    }
    for g in sc
        .map(|sc| sc.supplemental_groups.as_slice())
        .unwrap_or(&[])
    {
        additional.push(id_from_i64(
            "linux.security_context.supplemental_groups",
            *g,
        )?);
    }
    let mut seen = std::collections::HashSet::new();
    additional.retain(|g| seen.insert(*g));

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
        supplemental_groups_policy: policy,
        username: entry.as_ref().map(|e| e.name.clone()),
        home: entry.map(|e| e.home).filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests
mod tests {
    use super::*;
    use k8s_cri::v1::Int64Value;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        bob:x:1001:100::/home/bob:/bin/sh\n\
        broken line\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        users:x:100:alice\n\
        alice:x:1000:\n\
        wheel:x:10:alice,bob\n\
        audio:x:29:bob\n";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("etc");
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).expect("passwd");
        std::fs::write(dir.path().join("etc/group"), GROUP).expect("group");
        dir
    }

    fn sc() -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext::default()
    }

    #[test]
    fn image_user_table() {
        let root = rootfs();
        // (image user, uid, gid, additional gids, name)
        let cases: &[(&str, u32, u32, &[u32], Option<&str>)] = &[
            ("", 0, 0, &[0], Some("root")),
            ("0", 0, 0, &[0], Some("root")),
            ("alice", 1000, 1000, &[1000, 100, 10], Some("alice")),
            ("1000", 1000, 1000, &[1000, 100, 10], Some("alice")),
            ("bob", 1001, 100, &[100, 10, 29], Some("bob")),
            ("bob:wheel", 1001, 10, &[10, 29], Some("bob")),
            ("1001:29", 1001, 29, &[29, 10], Some("bob")),
            ("alice:5000", 1000, 5000, &[5000, 100, 10], Some("alice")),
            ("4242", 4242, 0, &[0], None),
            ("4242:4343", 4242, 4343, &[4343], None),
        ];
        for (image_user, uid, gid, extra, name) in cases {
            let u = resolve_user(root.path(), None, Some(image_user)).expect(image_user);
            assert_eq!(u.uid, *uid, "{image_user}");
            assert_eq!(u.gid, *gid, "{image_user}");
            assert_eq!(u.additional_gids, extra.to_vec(), "{image_user}");
            assert_eq!(u.username.as_deref(), *name, "{image_user}");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        let root = rootfs();
        match resolve_user(root.path(), None, Some("mallory")) {
            Err(SpecError::UnknownUser { user, file }) => {
                assert_eq!(user, "mallory");
                assert!(file.ends_with("etc/passwd"));
            }
            other => panic!("expected UnknownUser, got {other:?}"),
        }
        assert!(matches!(
            resolve_user(root.path(), None, Some("alice:nogroup")),
            Err(SpecError::UnknownGroup { group, .. }) if group == "nogroup"
        ));
        let mut c = sc();
        c.run_as_username = "nobody-here".into();
        assert!(matches!(
            resolve_user(root.path(), Some(&c), None),
            Err(SpecError::UnknownUser { user, .. }) if user == "nobody-here"
        ));
    }

    #[test]
    fn security_context_overrides_image() {
        let root = rootfs();
        let mut c = sc();
        c.run_as_user = Some(Int64Value { value: 1001 });
        let u = resolve_user(root.path(), Some(&c), Some("alice")).expect("uid");
        assert_eq!((u.uid, u.gid), (1001, 100));

        c.run_as_group = Some(Int64Value { value: 29 });
        c.supplemental_groups = vec![5555, 10];
        let u = resolve_user(root.path(), Some(&c), Some("alice")).expect("uid+gid");
        assert_eq!((u.uid, u.gid), (1001, 29));
        assert_eq!(u.additional_gids, vec![29, 10, 5555]);

        c.supplemental_groups_policy = SupplementalGroupsPolicy::Strict as i32;
        let u = resolve_user(root.path(), Some(&c), None).expect("strict");
        assert_eq!(u.additional_gids, vec![29, 5555, 10]);

        let mut c = sc();
        c.run_as_username = "alice".into();
        let u = resolve_user(root.path(), Some(&c), Some("bob")).expect("username");
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.home.as_deref(), Some("/home/alice"));
    }

    #[test]
    fn supplemental_groups_policy_table() {
        let root = rootfs();
        let merge = SupplementalGroupsPolicy::Merge as i32;
        let strict = SupplementalGroupsPolicy::Strict as i32;
        // (run_as_user, run_as_group, CRI groups, policy, gid, additional gids)
        let cases: &[(i64, Option<i64>, &[i64], i32, u32, &[u32])] = &[
            // critest: uid 1000 is in group 100 and 10 in /etc/group.
            (1000, None, &[1234], merge, 1000, &[1000, 100, 10, 1234]),
            (1000, None, &[1234], strict, 1000, &[1000, 1234]),
            (1000, None, &[], strict, 1000, &[1000]),
            (1000, Some(29), &[10], strict, 29, &[29, 10]),
            (1000, Some(29), &[10], merge, 29, &[29, 100, 10]),
            (1000, None, &[1000, 1234, 1234], strict, 1000, &[1000, 1234]),
            // A UID absent from /etc/passwd: nothing to merge.
            (4242, None, &[7], merge, 0, &[0, 7]),
            (4242, None, &[7], strict, 0, &[0, 7]),
        ];
        for (uid, group, extra, policy, gid, want) in cases {
            let mut c = sc();
            c.run_as_user = Some(Int64Value { value: *uid });
            c.run_as_group = group.map(|value| Int64Value { value });
            c.supplemental_groups = extra.to_vec();
            c.supplemental_groups_policy = *policy;
            let what = format!("{uid} {group:?} {extra:?} {policy}");
            let u = resolve_user(root.path(), Some(&c), Some("bob")).expect(&what);
            assert_eq!((u.uid, u.gid), (*uid as u32, *gid), "{what}");
            assert_eq!(u.additional_gids, want.to_vec(), "{what}");
            assert_eq!(u.supplemental_groups_policy as i32, *policy, "{what}");
            let linux = u.container_user().linux.expect("linux user");
            assert_eq!((linux.uid, linux.gid), (*uid, i64::from(*gid)), "{what}");
            let want64: Vec<i64> = want.iter().map(|g| i64::from(*g)).collect();
            assert_eq!(linux.supplemental_groups, want64, "{what}");
        }

        let mut c = sc();
        c.supplemental_groups_policy = 9;
        assert!(matches!(
            resolve_user(root.path(), Some(&c), None),
            Err(SpecError::InvalidField { field, .. }) if field.ends_with("supplemental_groups_policy")
        ));
        // Without a security context the policy is Merge.
        let u = resolve_user(root.path(), None, Some("alice")).expect("alice");
        assert_eq!(
            u.supplemental_groups_policy,
            SupplementalGroupsPolicy::Merge
        );
    }

    #[test]
    fn run_as_group_alone_and_bad_ids_are_errors() {
        let root = rootfs();
        let mut c = sc();
        c.run_as_group = Some(Int64Value { value: 5 });
        assert!(matches!(
            resolve_user(root.path(), Some(&c), None),
            Err(SpecError::InvalidField { field, .. }) if field.ends_with("run_as_group")
        ));
        let mut c = sc();
        c.run_as_user = Some(Int64Value { value: -1 });
        assert!(resolve_user(root.path(), Some(&c), None).is_err());
    }

    #[test]
    fn missing_files_mean_numeric_ids_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let u = resolve_user(root.path(), None, Some("123:456")).expect("numeric");
        assert_eq!((u.uid, u.gid, u.username), (123, 456, None));
        let u = resolve_user(root.path(), None, None).expect("root");
        assert_eq!((u.uid, u.gid), (0, 0));
        assert!(resolve_user(root.path(), None, Some("alice")).is_err());
    }

    #[test]
    fn symlinks_stay_inside_the_rootfs() {
        // A host "etc" with a user the rootfs does not have.
        let host = tempfile::tempdir().expect("host");
        std::fs::write(host.path().join("passwd"), "evil:x:4444:4444::/:/bin/sh\n").expect("w");
        let root = tempfile::tempdir().expect("root");
        std::fs::create_dir_all(root.path().join("etc")).expect("etc");
        std::fs::create_dir_all(root.path().join("real")).expect("real");
        std::fs::write(root.path().join("real/passwd"), "good:x:77:77::/:/bin/sh\n").expect("w");
        // Absolute symlink to the host's file: must be read inside the rootfs instead.
        let abs = host.path().join("passwd");
        std::os::unix::fs::symlink(&abs, root.path().join("etc/passwd")).expect("symlink");
        assert!(resolve_user(root.path(), None, Some("evil")).is_err());
        // Make the same absolute path exist inside the rootfs: that copy is what gets read.
        let inside = root.path().join(abs.strip_prefix("/").expect("abs"));
        std::fs::create_dir_all(inside.parent().expect("parent")).expect("mkdir");
        std::fs::write(&inside, "good:x:77:77::/:/bin/sh\n").expect("w");
        assert_eq!(
            resolve_user(root.path(), None, Some("good"))
                .expect("good")
                .uid,
            77
        );

        // Relative ../../.. escapes are clamped at the root.
        std::fs::remove_file(root.path().join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink(
            "../../../../../../real/passwd",
            root.path().join("etc/passwd"),
        )
        .expect("symlink");
        assert_eq!(
            resolve_user(root.path(), None, Some("good"))
                .expect("rel")
                .uid,
            77
        );

        // A loop is an error, not a hang.
        std::fs::remove_file(root.path().join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink("passwd", root.path().join("etc/passwd")).expect("loop");
        assert!(matches!(
            resolve_user(root.path(), None, Some("good")),
            Err(SpecError::ReadFile { .. })
        ));
    }

    #[test]
    fn resolve_in_root_paths() {
        let root = tempfile::tempdir().expect("root");
        std::fs::create_dir_all(root.path().join("a/b")).expect("mkdir");
        std::os::unix::fs::symlink("/a", root.path().join("link")).expect("symlink");
        assert_eq!(
            resolve_in_root(root.path(), Path::new("/link/b/../c")).expect("resolve"),
            root.path().join("a/c")
        );
        assert_eq!(
            resolve_in_root(root.path(), Path::new("../../x")).expect("resolve"),
            root.path().join("x")
        );
    }
}
