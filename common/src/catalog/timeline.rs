//! The timeline: for each stretch of time, the highest version whose partition set is
//! complete. A higher version overshadows lower ones wherever it covers them, also when their
//! intervals differ (an hourly stream segment under a daily batch segment); a lower version
//! stays visible for the part nobody higher covers.

use std::collections::BTreeMap;

use super::SegmentRecord;
use crate::time::Interval;

/// Whether a segment is read by queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Part of the timeline (at least for some of its interval).
    Visible,
    /// Entirely covered by higher versions.
    Overshadowed,
    /// Its (interval, version) set lacks partitions, so it is not used yet.
    Incomplete,
}

impl Visibility {
    /// Lowercase name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Visible => "visible",
            Self::Overshadowed => "overshadowed",
            Self::Incomplete => "incomplete",
        }
    }
}

/// A stretch of time served by one complete (interval, version) set.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineChunk {
    /// The part of the segments' interval this version serves.
    pub interval: Interval,
    /// The version.
    pub version: String,
    /// The partitions, in partition order; tombstones hold no rows.
    pub segments: Vec<SegmentRecord>,
}

/// The visible versions of a dataSource, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    chunks: Vec<TimelineChunk>,
    visibility: BTreeMap<String, Visibility>,
}

impl Timeline {
    /// Builds the timeline of a set of used segments.
    pub fn build<'a>(segments: impl IntoIterator<Item = &'a SegmentRecord>) -> Self {
        let mut sets: BTreeMap<(Interval, String), Vec<&SegmentRecord>> = BTreeMap::new();
        for s in segments {
            sets.entry((s.interval, s.version.clone())).or_default().push(s);
        }
        let mut visibility = BTreeMap::new();
        let mut complete = Vec::new();
        for ((interval, version), mut members) in sets {
            members.sort_by_key(|s| s.partition);
            let expected = members[0].partitions;
            // Druid's numbered shard spec with zero core partitions: an appendable set (the
            // stream's, one partition per checkpoint) is complete with whatever it holds.
            let appendable = members.iter().all(|s| s.partitions == 0);
            let is_complete = appendable
                || members.len() as u32 == expected
                    && members
                        .iter()
                        .enumerate()
                        .all(|(i, s)| s.partition == i as u32 && s.partitions == expected);
            if is_complete {
                complete.push((interval, version, members));
            } else {
                for s in members {
                    visibility.insert(s.id.clone(), Visibility::Incomplete);
                }
            }
        }
        // Highest version first; each claims whatever time is still unclaimed.
        complete.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut claimed: Vec<Interval> = Vec::new();
        let mut chunks = Vec::new();
        for (interval, version, members) in complete {
            let parts = subtract(interval, &claimed);
            let state = if parts.is_empty() { Visibility::Overshadowed } else { Visibility::Visible };
            for s in &members {
                visibility.insert(s.id.clone(), state);
            }
            for part in parts {
                chunks.push(TimelineChunk {
                    interval: part,
                    version: version.clone(),
                    segments: members.iter().map(|s| (*s).clone()).collect(),
                });
            }
            claim(&mut claimed, interval);
        }
        chunks.sort_by_key(|c| c.interval);
        Self { chunks, visibility }
    }

    /// Every visible chunk, in time order.
    pub fn chunks(&self) -> &[TimelineChunk] {
        &self.chunks
    }

    /// The visible chunks overlapping an interval.
    pub fn lookup(&self, interval: Interval) -> impl Iterator<Item = &TimelineChunk> {
        self.chunks.iter().filter(move |c| c.interval.overlaps(&interval))
    }

    /// How a segment of the built set fares.
    pub fn visibility(&self, segment_id: &str) -> Option<Visibility> {
        self.visibility.get(segment_id).copied()
    }
}

/// `interval` minus a sorted list of disjoint intervals.
fn subtract(interval: Interval, claimed: &[Interval]) -> Vec<Interval> {
    let mut parts = Vec::new();
    let mut start = interval.start;
    for c in claimed.iter().filter(|c| c.overlaps(&interval)) {
        if c.start > start {
            parts.push(Interval { start, end: c.start });
        }
        start = start.max(c.end);
    }
    if start < interval.end {
        parts.push(Interval { start, end: interval.end });
    }
    parts
}

/// Adds an interval to a sorted list of disjoint intervals, merging as needed.
fn claim(claimed: &mut Vec<Interval>, interval: Interval) {
    claimed.push(interval);
    claimed.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(claimed.len());
    for i in claimed.drain(..) {
        match merged.last_mut() {
            Some(last) if i.start <= last.end => last.end = last.end.max(i.end),
            _ => merged.push(i),
        }
    }
    *claimed = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Origin;

    fn seg(interval: &str, version: &str, partition: u32, partitions: u32) -> SegmentRecord {
        let interval = Interval::parse(interval).unwrap();
        SegmentRecord {
            id: format!("ds_{interval}_{version}_{partition}"),
            data_source: "ds".into(),
            interval,
            version: version.into(),
            partition,
            partitions,
            rows: 1,
            bytes: 1,
            path: Some(format!("p{partition}")),
            origin: Origin::Batch,
            created: version.into(),
        }
    }

    #[test]
    fn higher_version_overshadows_the_same_interval() {
        let old = seg("2013-08-31/2013-09-01", "v1", 0, 1);
        let new = seg("2013-08-31/2013-09-01", "v2", 0, 1);
        let t = Timeline::build([&old, &new]);
        assert_eq!(t.chunks().len(), 1);
        assert_eq!(t.chunks()[0].version, "v2");
        assert_eq!(t.visibility(&old.id), Some(Visibility::Overshadowed));
        assert_eq!(t.visibility(&new.id), Some(Visibility::Visible));
    }

    #[test]
    fn incomplete_sets_do_not_overshadow() {
        let old = seg("2013-08-31/2013-09-01", "v1", 0, 1);
        let partial = seg("2013-08-31/2013-09-01", "v2", 1, 2);
        let t = Timeline::build([&old, &partial]);
        assert_eq!(t.chunks()[0].version, "v1");
        assert_eq!(t.visibility(&partial.id), Some(Visibility::Incomplete));
        let rest = seg("2013-08-31/2013-09-01", "v2", 0, 2);
        let t = Timeline::build([&old, &partial, &rest]);
        assert_eq!(t.chunks()[0].version, "v2");
        assert_eq!(t.chunks()[0].segments.len(), 2);
    }

    #[test]
    fn appendable_sets_are_complete_with_any_partitions() {
        let first = seg("2013-08-31T05/2013-08-31T06", "v0", 0, 0);
        let third = seg("2013-08-31T05/2013-08-31T06", "v0", 2, 0);
        let t = Timeline::build([&first, &third]);
        assert_eq!(t.chunks().len(), 1);
        assert_eq!(t.chunks()[0].segments.len(), 2);
        assert_eq!(t.visibility(&third.id), Some(Visibility::Visible));
        let batch = seg("2013-08-31/2013-09-01", "v1", 0, 1);
        let t = Timeline::build([&first, &third, &batch]);
        assert_eq!(t.visibility(&first.id), Some(Visibility::Overshadowed));
    }

    #[test]
    fn coarser_higher_version_covers_finer_lower_ones_and_leaves_the_rest() {
        let hour_in = seg("2013-08-31T05/2013-08-31T06", "v1", 0, 1);
        let hour_out = seg("2013-09-01T05/2013-09-01T06", "v1", 0, 1);
        let day = seg("2013-08-31/2013-09-01", "v2", 0, 1);
        let t = Timeline::build([&hour_in, &hour_out, &day]);
        assert_eq!(t.visibility(&hour_in.id), Some(Visibility::Overshadowed));
        assert_eq!(t.visibility(&hour_out.id), Some(Visibility::Visible));
        let versions: Vec<_> = t.chunks().iter().map(|c| c.version.as_str()).collect();
        assert_eq!(versions, ["v2", "v1"]);

        // A lower day under a higher hour stays visible around the hour.
        let low_day = seg("2013-08-31/2013-09-01", "v1", 0, 1);
        let high_hour = seg("2013-08-31T05/2013-08-31T06", "v2", 0, 1);
        let t = Timeline::build([&low_day, &high_hour]);
        let parts: Vec<_> = t.chunks().iter().map(|c| (c.interval.to_string(), c.version.as_str())).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].1, "v2");
        assert_eq!(parts[0].0, "2013-08-31T00:00:00.000Z/2013-08-31T05:00:00.000Z");
        assert_eq!(parts[2].0, "2013-08-31T06:00:00.000Z/2013-09-01T00:00:00.000Z");
        assert_eq!(t.lookup(Interval::parse("2013-08-31T05:30/PT1M").unwrap()).count(), 1);
    }
}
