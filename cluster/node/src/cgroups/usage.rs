//! Reading what a cgroup has used, as cAdvisor reads it for the kubelet's resource metrics:
//! the CPU time its processes have had since it was made (cumulative, in nanoseconds) and its
//! memory working set (usage less the inactive file cache, which the kernel can take back).

use std::path::{Path, PathBuf};

use super::hierarchy::Hierarchies;

/// The files of one cgroup that its usage is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageFiles {
    /// cgroup v1: `cpuacct.usage` in the cpuacct hierarchy, `memory.usage_in_bytes` and
    /// `memory.stat` in the memory hierarchy.
    V1 { cpuacct: PathBuf, memory: PathBuf },
    /// cgroup v2: `cpu.stat`, `memory.current` and `memory.stat` in the cgroup's directory.
    V2 { dir: PathBuf },
}

/// One reading of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use that the kernel cannot easily reclaim, in bytes.
    pub working_set_bytes: u64,
}

impl UsageFiles {
    /// The files of the cgroup `relative` below this process's cgroups (as the tree names
    /// it); None on v1 without a cpuacct or memory hierarchy.
    pub(super) fn of(hierarchies: &Hierarchies, relative: &Path) -> Option<UsageFiles> {
        match hierarchies {
            Hierarchies::V1 { .. } => Some(UsageFiles::V1 {
                cpuacct: hierarchies.v1_dir("cpuacct")?.join(relative),
                memory: hierarchies.v1_dir("memory")?.join(relative),
            }),
            Hierarchies::V2 { dir, .. } => Some(UsageFiles::V2 {
                dir: dir.join(relative),
            }),
        }
    }

    /// Reads the cgroup's usage now; an error when it is gone (or not made yet).
    pub fn read(&self) -> std::io::Result<CgroupUsage> {
        match self {
            UsageFiles::V1 { cpuacct, memory } => {
                let cpu_ns = read_number(&cpuacct.join("cpuacct.usage"))?;
                let usage = read_number(&memory.join("memory.usage_in_bytes"))?;
                let stat = std::fs::read_to_string(memory.join("memory.stat"))?;
                let inactive_file = stat_value(&stat, "total_inactive_file").unwrap_or(0);
                Ok(CgroupUsage {
                    cpu_ns,
                    working_set_bytes: working_set(usage, inactive_file),
                })
            }
            UsageFiles::V2 { dir } => {
                let cpu = std::fs::read_to_string(dir.join("cpu.stat"))?;
                let usage_usec = stat_value(&cpu, "usage_usec").ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "no usage_usec")
                })?;
                let usage = read_number(&dir.join("memory.current"))?;
                let stat = std::fs::read_to_string(dir.join("memory.stat"))?;
                let inactive_file = stat_value(&stat, "inactive_file").unwrap_or(0);
                Ok(CgroupUsage {
                    cpu_ns: usage_usec.saturating_mul(1000),
                    working_set_bytes: working_set(usage, inactive_file),
                })
            }
        }
    }
}

/// The working set as cAdvisor computes it (`setMemoryStats`): usage less the inactive file
/// cache, never below zero.
pub fn working_set(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

fn read_number(path: &Path) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse().map_err(|error| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {error}", path.display()),
        )
    })
}

/// The value of `key` in a flat keyed file (`memory.stat`, `cpu.stat`: `key value` lines).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_set_leaves_out_inactive_file_pages() {
        assert_eq!(working_set(100 << 20, 30 << 20), 70 << 20);
        // Counters read at slightly different moments may cross.
        assert_eq!(working_set(10, 20), 0);
    }

    #[test]
    fn keyed_files_are_read_by_exact_name() {
        let stat = "cache 4096\ninactive_file 8192\ntotal_inactive_file 12288\n";
        assert_eq!(stat_value(stat, "inactive_file"), Some(8192));
        assert_eq!(stat_value(stat, "total_inactive_file"), Some(12288));
        assert_eq!(stat_value(stat, "active_file"), None);
    }

    #[test]
    fn v1_and_v2_files_are_read() {
        let dir =
            std::env::temp_dir().join(format!("k8s-labs-cgroup-usage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cpuacct.usage"), "1500000000\n").unwrap();
        std::fs::write(dir.join("memory.usage_in_bytes"), "73400320\n").unwrap();
        std::fs::write(
            dir.join("memory.stat"),
            "inactive_file 1\ntotal_inactive_file 4194304\n",
        )
        .unwrap();
        let v1 = UsageFiles::V1 {
            cpuacct: dir.clone(),
            memory: dir.clone(),
        };
        assert_eq!(
            v1.read().unwrap(),
            CgroupUsage {
                cpu_ns: 1_500_000_000,
                working_set_bytes: 73400320 - 4194304
            }
        );
        std::fs::write(dir.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").unwrap();
        std::fs::write(dir.join("memory.current"), "8192\n").unwrap();
        std::fs::write(dir.join("memory.stat"), "anon 4096\ninactive_file 4096\n").unwrap();
        let v2 = UsageFiles::V2 { dir: dir.clone() };
        assert_eq!(
            v2.read().unwrap(),
            CgroupUsage {
                cpu_ns: 2_500_000,
                working_set_bytes: 4096
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(v2.read().is_err());
    }
}
