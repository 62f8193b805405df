//! Where this process's cgroups are: cgroup v2 (one unified hierarchy, as on most laptops and
//! GitHub's runners) or v1 (a hierarchy per controller, as on our machines; a "hybrid" host
//! with an empty unified hierarchy beside them counts as v1, as runc counts it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::mounts::unescape_mountinfo;

/// The controllers the node sets limits with.
pub const LIMIT_CONTROLLERS: &[&str] = &["memory", "cpu", "pids"];

/// The cgroup layout of the machine, seen from this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchies {
    /// The unified hierarchy: `dir` is where this process's own cgroups go (the parent of its
    /// own cgroup, which holds processes and so cannot have controller-enabled children; runc
    /// picks the same place for a relative cgroups path).
    V2 {
        /// Where the unified hierarchy is mounted (`/sys/fs/cgroup`).
        mount: PathBuf,
        dir: PathBuf,
    },
    /// One directory per v1 hierarchy: this process's own cgroup in it, with the controllers
    /// the hierarchy carries (`["cpu", "cpuacct"]`, `["name=systemd"]`; none for the unified
    /// hierarchy a hybrid host mounts beside them).
    V1 { dirs: Vec<V1Dir> },
}

/// This process's cgroup in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Dir {
    pub controllers: Vec<String>,
    pub dir: PathBuf,
}

impl Hierarchies {
    /// Reads this process's cgroups from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn of_this_process() -> Result<Hierarchies> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").context("reading cgroups")?;
        Hierarchies::parse(&mountinfo, &cgroup)
    }

    fn parse(mountinfo: &str, cgroup: &str) -> Result<Hierarchies> {
        let mounts: Vec<CgroupMount> = mountinfo.lines().filter_map(CgroupMount::parse).collect();
        let memberships: Vec<(Vec<String>, &str)> = cgroup
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                let controllers = controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                Some((controllers, path))
            })
            .collect();
        let unified = mounts
            .iter()
            .find(|m| m.version2 && m.point == Path::new("/sys/fs/cgroup"));
        if let Some(mount) = unified {
            let own = memberships
                .iter()
                .find(|(controllers, _)| controllers.is_empty())
                .map(|(_, path)| *path)
                .context("no cgroup v2 line in /proc/self/cgroup")?;
            let own_dir = mount.dir_of(own);
            // The root cgroup may hold processes and have children; any other may not.
            let dir = if own_dir == mount.point {
                own_dir
            } else {
                own_dir.parent().map(Path::to_path_buf).unwrap_or(own_dir)
            };
            return Ok(Hierarchies::V2 {
                mount: mount.point.clone(),
                dir,
            });
        }
        let mut dirs = Vec::new();
        // A hybrid host's empty unified hierarchy too: runc makes its cgroups there as well.
        for mount in &mounts {
            let Some((_, own)) = memberships
                .iter()
                .find(|(controllers, _)| same_set(controllers, &mount.controllers))
            else {
                continue;
            };
            dirs.push(V1Dir {
                controllers: mount.controllers.clone(),
                dir: mount.dir_of(own),
            });
        }
        for controller in LIMIT_CONTROLLERS {
            if !dirs
                .iter()
                .any(|d| d.controllers.iter().any(|c| c == controller))
            {
                bail!("the {controller} cgroup controller is not mounted");
            }
        }
        Ok(Hierarchies::V1 { dirs })
    }

    /// The directory of this process's cgroup in the v1 hierarchy carrying `controller`.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        match self {
            Hierarchies::V1 { dirs } => dirs
                .iter()
                .find(|d| d.controllers.iter().any(|c| c == controller))
                .map(|d| d.dir.as_path()),
            Hierarchies::V2 { .. } => None,
        }
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// A cgroup filesystem mount from mountinfo.
#[derive(Debug)]
struct CgroupMount {
    /// The cgroup the mount shows at its mount point (not `/` inside a cgroup namespace or a
    /// bind-mounted subtree).
    root: String,
    point: PathBuf,
    version2: bool,
    controllers: Vec<String>,
}

impl CgroupMount {
    /// One line of `/proc/self/mountinfo`:
    /// `id parent major:minor root point options [optional…] - fstype source superoptions`.
    fn parse(line: &str) -> Option<CgroupMount> {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split_whitespace().collect();
        let mut after = after.split_whitespace();
        let fstype = after.next()?;
        let _source = after.next()?;
        let super_options = after.next().unwrap_or("");
        let version2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => return None,
        };
        let controllers = if version2 {
            Vec::new()
        } else {
            super_options
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                .filter(|o| {
                    !matches!(
                        *o,
                        "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode"
                    )
                })
                .map(str::to_string)
                .collect()
        };
        Some(CgroupMount {
            root: unescape_mountinfo(fields.get(3)?),
            point: PathBuf::from(unescape_mountinfo(fields.get(4)?)),
            version2,
            controllers,
        })
    }

    /// The directory of cgroup `path` (as `/proc/self/cgroup` names it) under this mount.
    fn dir_of(&self, path: &str) -> PathBuf {
        let relative = Path::new(path)
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(path.trim_start_matches('/')));
        let relative = relative.strip_prefix("/").unwrap_or(relative);
        self.point.join(relative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/ed27
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn a_hybrid_host_is_v1_with_this_process_cgroup_per_hierarchy() {
        let hierarchies = Hierarchies::parse(V1_MOUNTINFO, V1_CGROUP).unwrap();
        assert_eq!(
            hierarchies.v1_dir("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/process_api/ed27"))
        );
        assert_eq!(
            hierarchies.v1_dir("pids"),
            Some(Path::new("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            hierarchies.v1_dir("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(hierarchies.v1_dir("devices"), None);
        let Hierarchies::V1 { dirs } = hierarchies else {
            panic!("v1")
        };
        assert!(dirs.contains(&V1Dir {
            controllers: vec![],
            dir: PathBuf::from("/sys/fs/cgroup/unified"),
        }));
    }

    #[test]
    fn v2_uses_the_parent_of_this_process_cgroup() {
        let mountinfo = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cgroup = "0::/system.slice/runner.service\n";
        assert_eq!(
            Hierarchies::parse(mountinfo, cgroup).unwrap(),
            Hierarchies::V2 {
                mount: PathBuf::from("/sys/fs/cgroup"),
                dir: PathBuf::from("/sys/fs/cgroup/system.slice")
            }
        );
        // In a container's cgroup namespace, this process may sit at the root.
        assert_eq!(
            Hierarchies::parse(mountinfo, "0::/\n").unwrap(),
            Hierarchies::V2 {
                mount: PathBuf::from("/sys/fs/cgroup"),
                dir: PathBuf::from("/sys/fs/cgroup")
            }
        );
    }

    #[test]
    fn a_missing_limit_controller_is_an_error() {
        let mountinfo = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let error = Hierarchies::parse(mountinfo, "4:memory:/\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the cpu cgroup controller is not mounted"
        );
    }
}
