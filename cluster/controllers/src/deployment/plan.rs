//! How many replicas each ReplicaSet of a Deployment should have next: pure decisions, apart
//! from the API writes that carry them out.
//!
//! Mirrors `rolling.go` (`reconcileNewReplicaSet`, `reconcileOldReplicaSets`,
//! `cleanupUnhealthyReplicas`, `scaleDownOldReplicaSetsForRollingUpdate`), `sync.go`
//! (`scale`, `isScalingEvent`, `cleanupDeployment`) and `NewRSNewReplicas`,
//! `GetProportion`, `FindActiveOrLatest` and `IsSaturated` of `deployment_util.go`.
//!
//! A plan is a list of `(index, replicas)`: the ReplicaSet at `index` of the slice given is
//! to be scaled to `replicas`.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::util::{
    DESIRED_REPLICAS, MAX_REPLICAS, available_count, by_creation, deployment_replicas,
    int_annotation, is_recreate, max_surge, max_unavailable, replica_count, revision, rs_available,
    rs_replicas,
};

/// Scalings to carry out, in order: `(index of the ReplicaSet, its new replicas)`.
pub(crate) type Plan = Vec<(usize, i32)>;

/// `NewRSNewReplicas`: the size the new ReplicaSet may grow to now. Recreate: all replicas
/// at once (the old ones are gone by then); RollingUpdate: up to `replicas + maxSurge` pods
/// in all, never more than `replicas` in the new set.
pub(crate) fn new_rs_replicas(
    d: &Deployment,
    all: &[ReplicaSet],
    new: &ReplicaSet,
) -> Result<i32, String> {
    let desired = deployment_replicas(d);
    if is_recreate(d) {
        return Ok(desired);
    }
    let current = replica_count(all);
    let max_total = desired + max_surge(d)?;
    if current >= max_total {
        return Ok(rs_replicas(new));
    }
    let scale_up = (max_total - current).min(desired - rs_replicas(new));
    Ok(rs_replicas(new) + scale_up)
}

/// `reconcileNewReplicaSet`: the new set's next size, if it is not `replicas` yet.
/// `new` indexes `all`.
pub(crate) fn new_rs_target(
    d: &Deployment,
    all: &[ReplicaSet],
    new: usize,
) -> Result<Option<i32>, String> {
    let desired = deployment_replicas(d);
    let current = rs_replicas(&all[new]);
    if current == desired {
        return Ok(None);
    }
    if current > desired {
        return Ok(Some(desired));
    }
    Ok(Some(new_rs_replicas(d, all, &all[new])?))
}

/// Indices of `sets` in creation order (oldest first).
fn oldest_first(sets: &[ReplicaSet], indices: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut ordered: Vec<usize> = indices.into_iter().collect();
    ordered.sort_by(|a, b| by_creation(&sets[*a], &sets[*b]));
    ordered
}

/// `reconcileOldReplicaSets`: how far the old sets (`old` indexes `all`) may shrink while
/// `replicas - maxUnavailable` pods stay available. Unhealthy pods go first
/// (`cleanupUnhealthyReplicas`: they count against nothing), then available ones down to the
/// minimum (`scaleDownOldReplicaSetsForRollingUpdate`), oldest sets first.
pub(crate) fn old_scale_downs(
    d: &Deployment,
    all: &[ReplicaSet],
    old: &[usize],
    new: Option<usize>,
) -> Result<Plan, String> {
    let old_count: i32 = old.iter().map(|i| rs_replicas(&all[*i])).sum();
    if old_count == 0 {
        return Ok(Vec::new());
    }
    let all_count = replica_count(all);
    let min_available = deployment_replicas(d) - max_unavailable(d)?;
    let new_unavailable = new.map_or(0, |n| rs_replicas(&all[n]) - rs_available(&all[n]));
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(Vec::new());
    }
    let order = oldest_first(all, old.iter().copied());
    let mut sizes: Vec<i32> = all.iter().map(rs_replicas).collect();
    let mut cleaned = 0;
    for &i in &order {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = sizes[i] - rs_available(&all[i]);
        if sizes[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let count = (max_scaled_down - cleaned).min(unhealthy);
        sizes[i] -= count;
        cleaned += count;
    }
    let available = available_count(all);
    if available > min_available {
        let total = available - min_available;
        let mut scaled = 0;
        for &i in &order {
            if scaled >= total {
                break;
            }
            let count = sizes[i].min(total - scaled);
            sizes[i] -= count;
            scaled += count;
        }
    }
    Ok(order
        .into_iter()
        .filter(|i| sizes[*i] != rs_replicas(&all[*i]))
        .map(|i| (i, sizes[i]))
        .collect())
}

/// `isScalingEvent`: an active set was last sized for a different `replicas`.
pub(crate) fn is_scaling_event(d: &Deployment, sets: &[ReplicaSet]) -> bool {
    let desired = deployment_replicas(d);
    sets.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .filter_map(|rs| int_annotation(rs, DESIRED_REPLICAS))
        .any(|recorded| recorded != desired)
}

/// `FindActiveOrLatest`: the only set with pods, or when none has any the new one (else the
/// newest old one); `None` when several have pods.
fn active_or_latest(sets: &[ReplicaSet], new: Option<usize>) -> Option<usize> {
    let mut old: Vec<usize> = (0..sets.len()).filter(|i| Some(*i) != new).collect();
    old.sort_by(|a, b| by_creation(&sets[*b], &sets[*a]));
    let active: Vec<usize> = old
        .iter()
        .copied()
        .chain(new)
        .filter(|i| rs_replicas(&sets[*i]) > 0)
        .collect();
    match active.as_slice() {
        [] => new.or_else(|| old.first().copied()),
        [only] => Some(*only),
        _ => None,
    }
}

/// `IsSaturated`: the new set has all the replicas, all available.
fn is_saturated(d: &Deployment, new: &ReplicaSet) -> bool {
    let desired = deployment_replicas(d);
    int_annotation(new, DESIRED_REPLICAS) == Some(desired)
        && rs_replicas(new) == desired
        && rs_available(new) == desired
}

/// `scale`: the sizes after `replicas` changed (or while paused). One active set takes all
/// the replicas; a saturated new set lets the old ones go to zero; during a rolling update
/// the difference is shared out in proportion to each set's size (`GetProportion`), the
/// remainder to the largest set. `status_replicas` is the Deployment's `status.replicas`.
pub(crate) fn proportional_scale(
    d: &Deployment,
    sets: &[ReplicaSet],
    new: Option<usize>,
    status_replicas: i32,
) -> Result<Plan, String> {
    let desired = deployment_replicas(d);
    if let Some(only) = active_or_latest(sets, new) {
        return Ok(if rs_replicas(&sets[only]) == desired {
            Vec::new()
        } else {
            vec![(only, desired)]
        });
    }
    let active: Vec<usize> = (0..sets.len())
        .filter(|i| rs_replicas(&sets[*i]) > 0)
        .collect();
    if new.is_some_and(|n| is_saturated(d, &sets[n])) {
        return Ok(active
            .into_iter()
            .filter(|i| Some(*i) != new)
            .map(|i| (i, 0))
            .collect());
    }
    if is_recreate(d) {
        return Ok(Vec::new());
    }
    let max_total = desired + max_surge(d)?;
    let allowed = if desired > 0 { max_total } else { 0 };
    let to_add = allowed - active.iter().map(|i| rs_replicas(&sets[*i])).sum::<i32>();
    let mut order = active;
    // Larger sets first; among equals the newer first when growing, the older when shrinking.
    order.sort_by(|a, b| {
        let size = rs_replicas(&sets[*b]).cmp(&rs_replicas(&sets[*a]));
        let age = by_creation(&sets[*a], &sets[*b]);
        size.then(if to_add > 0 { age.reverse() } else { age })
    });
    let mut sizes: Vec<i32> = sets.iter().map(rs_replicas).collect();
    let mut added = 0;
    if to_add != 0 {
        for &i in &order {
            let proportion =
                proportion(&sets[i], desired, max_total, status_replicas, to_add, added);
            sizes[i] += proportion;
            added += proportion;
        }
    }
    if let Some(&first) = order.first()
        && added != to_add
    {
        sizes[first] = (sizes[first] + to_add - added).max(0);
    }
    Ok(order
        .into_iter()
        .filter(|i| sizes[*i] != rs_replicas(&sets[*i]))
        .map(|i| (i, sizes[i]))
        .collect())
}

/// `GetProportion`: the share of `to_add` (of which `added` is given out) for `rs`, from
/// its size relative to the Deployment's maximum when it was last scaled.
fn proportion(
    rs: &ReplicaSet,
    desired: i32,
    max_total: i32,
    status_replicas: i32,
    to_add: i32,
    added: i32,
) -> i32 {
    let size = rs_replicas(rs);
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired == 0 {
        -size
    } else {
        let before = match int_annotation(rs, MAX_REPLICAS) {
            Some(before) if before != 0 => before,
            _ => status_replicas,
        };
        if before == 0 {
            0
        } else {
            let scaled = f64::from(size) * f64::from(max_total) / f64::from(before);
            // `integer.RoundToInt32`: half away from zero.
            scaled.round() as i32 - size
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// `cleanupDeployment`: names of old sets beyond `revisionHistoryLimit` to delete, lowest
/// revision first; sets that still have pods, are being deleted or whose status lags their
/// spec are kept.
pub(crate) fn history_to_delete(d: &Deployment, old: &[&ReplicaSet]) -> Vec<String> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
        return Vec::new();
    };
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let excess = alive
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    alive.sort_by(|a, b| {
        revision(a)
            .cmp(&revision(b))
            .then_with(|| by_creation(a, b))
    });
    alive
        .into_iter()
        .take(excess)
        .filter(|rs| {
            let status = rs.status.as_ref();
            status.map_or(0, |s| s.replicas) == 0
                && rs_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0)
                    <= status.and_then(|s| s.observed_generation).unwrap_or(0)
        })
        .filter_map(|rs| rs.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests;
