//! The results: every measurement, medians per system, ratios of ours to each anchor, as
//! markdown (`target/bench/report.md`) and CSV (`target/bench/samples.csv`).

use std::fmt::Write;

/// What a row's throughput counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Requests,
    Messages,
    Bytes,
    /// Users joining a chat (connect, welcome, a notice to the others).
    Joins,
    /// TLS connections made (connect, handshake, one request).
    Handshakes,
}

/// One measurement of one system in one case.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    pub round: usize,
    /// Per second, in the row's unit.
    pub rate: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Server CPU per request (or message), microseconds.
    pub cpu_us: Option<f64>,
    pub peak_rss_kib: Option<f64>,
    /// Idle scale: resident bytes per idle connection, against the run without idle ones.
    pub per_idle_bytes: Option<f64>,
    /// Idle scale: throughput against the same round's run without idle connections.
    pub vs_no_idle: Option<f64>,
}

/// A system in a case: its measurements, or why there are none.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: usize,
    pub case: String,
    /// Cases of one group get a geometric-mean row per system (`-P 1`, `-P 16`).
    pub group: Option<String>,
    pub system: String,
    pub ours: bool,
    pub unit: Unit,
    pub points: Vec<Point>,
    pub note: Option<String>,
}

/// All rows, in the order they were first measured.
#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

/// Identifies a row.
#[derive(Debug, Clone)]
pub struct Key<'a> {
    pub scenario: usize,
    pub case: &'a str,
    pub group: Option<&'a str>,
    pub system: &'a str,
    pub ours: bool,
    pub unit: Unit,
}

/// The median of `v` (the mean of the middle two of an even count), `None` for none.
pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn geomean(v: &[f64]) -> Option<f64> {
    if v.is_empty() || v.iter().any(|x| *x <= 0.0) {
        return None;
    }
    Some((v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
}

/// Medians of a row's points, field by field.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    rate: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    cpu: Option<f64>,
    rss: Option<f64>,
    per_idle: Option<f64>,
    vs_no_idle: Option<f64>,
    n: usize,
}

impl Row {
    fn summary(&self) -> Summary {
        let m = |f: fn(&Point) -> Option<f64>| median(self.points.iter().filter_map(f).collect());
        Summary {
            rate: m(|p| Some(p.rate)),
            p50: m(|p| p.p50_us),
            p99: m(|p| p.p99_us),
            cpu: m(|p| p.cpu_us),
            rss: m(|p| p.peak_rss_kib),
            per_idle: m(|p| p.per_idle_bytes),
            vs_no_idle: m(|p| p.vs_no_idle),
            n: self.points.len(),
        }
    }
}

impl Table {
    fn row(&mut self, k: &Key<'_>) -> &mut Row {
        let i = match self
            .rows
            .iter()
            .position(|r| r.scenario == k.scenario && r.case == k.case && r.system == k.system)
        {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    scenario: k.scenario,
                    case: k.case.to_string(),
                    group: k.group.map(str::to_string),
                    system: k.system.to_string(),
                    ours: k.ours,
                    unit: k.unit,
                    points: Vec::new(),
                    note: None,
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// Adds a measurement.
    pub fn add(&mut self, k: &Key<'_>, point: Point) {
        self.row(k).points.push(point);
    }

    /// Says why a row has no (or fewer) measurements.
    pub fn note(&mut self, k: &Key<'_>, note: &str) {
        let row = self.row(k);
        match &mut row.note {
            Some(n) if !n.contains(note) => {
                n.push_str("; ");
                n.push_str(note);
            }
            Some(_) => {}
            None => row.note = Some(note.to_string()),
        }
    }

    /// Every measurement, one line each.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "scenario,case,system,ours,round,rate_per_s,p50_us,p99_us,cpu_us_per_req,peak_rss_kib,rss_bytes_per_idle,vs_no_idle\n",
        );
        let o = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
        for r in &self.rows {
            for p in &r.points {
                let _ = writeln!(
                    out,
                    "{},{:?},{:?},{},{},{:.1},{},{},{},{},{},{}",
                    r.scenario,
                    r.case,
                    r.system,
                    r.ours,
                    p.round,
                    p.rate,
                    o(p.p50_us),
                    o(p.p99_us),
                    o(p.cpu_us),
                    o(p.peak_rss_kib),
                    o(p.per_idle_bytes),
                    o(p.vs_no_idle)
                );
            }
        }
        out
    }

    /// Rows of `scenario`, with a geometric-mean row per system and group added after them.
    fn scenario_rows(&self, scenario: usize) -> Vec<(Row, Summary)> {
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.scenario == scenario)
            .collect();
        // Case by case (in the order first measured), systems in the order first measured.
        let mut cases: Vec<&str> = Vec::new();
        let mut systems: Vec<&str> = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        for r in &rows {
            if !cases.contains(&r.case.as_str()) {
                cases.push(&r.case);
            }
            if !systems.contains(&r.system.as_str()) {
                systems.push(&r.system);
            }
            if let Some(g) = &r.group {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
        let place = |list: &[&str], x: &str| list.iter().position(|y| *y == x);
        rows.sort_by_key(|r| (place(&cases, &r.case), place(&systems, &r.system)));
        let mut out: Vec<(Row, Summary)> =
            rows.iter().map(|r| ((*r).clone(), r.summary())).collect();
        for g in groups {
            let mut systems: Vec<&Row> = Vec::new();
            for r in rows
                .iter()
                .filter(|r| r.group.as_deref() == Some(g.as_str()))
            {
                if !systems.iter().any(|s| s.system == r.system) {
                    systems.push(r);
                }
            }
            for s in systems {
                let members: Vec<&(Row, Summary)> = out
                    .iter()
                    .filter(|(r, _)| r.group.as_deref() == Some(g.as_str()) && r.system == s.system)
                    .collect();
                let all = |f: fn(&Summary) -> Option<f64>| -> Option<f64> {
                    let v: Option<Vec<f64>> = members.iter().map(|(_, m)| f(m)).collect();
                    v.and_then(|v| geomean(&v))
                };
                let summary = Summary {
                    rate: all(|m| m.rate),
                    cpu: all(|m| m.cpu),
                    n: members.iter().map(|(_, m)| m.n).min().unwrap_or(0),
                    ..Summary::default()
                };
                let points = round_geomeans(members.iter().map(|(r, _)| r));
                let mut row = s.clone();
                row.case = format!("geomean {g}");
                row.points = points;
                out.push((row, summary));
            }
        }
        out
    }

    /// The markdown report: per scenario, a table of medians and one of ratios.
    pub fn markdown(&self, titles: &[(usize, &str)]) -> String {
        let mut md = String::new();
        for &(scenario, title) in titles {
            let rows = self.scenario_rows(scenario);
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(md, "\n### {scenario}. {title}\n");
            md.push_str("| case | system | throughput | p50 | p99 | server CPU / req | peak RSS | runs | notes |\n");
            md.push_str("|---|---|--:|--:|--:|--:|--:|--:|---|\n");
            for (r, s) in &rows {
                let mut notes = Vec::new();
                if let Some(b) = s.per_idle {
                    notes.push(format!("{:.2} KiB RSS per idle conn", b / 1024.0));
                }
                if let Some(v) = s.vs_no_idle {
                    notes.push(format!("{v:.2}x the throughput with no idle conns"));
                }
                if let Some(n) = &r.note {
                    notes.push(n.clone());
                }
                let name = if r.ours {
                    format!("**{}**", r.system)
                } else {
                    r.system.clone()
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.case,
                    name,
                    s.rate
                        .map(|v| rate(v, r.unit))
                        .unwrap_or_else(|| "-".into()),
                    s.p50.map(us).unwrap_or_else(|| "-".into()),
                    s.p99.map(us).unwrap_or_else(|| "-".into()),
                    s.cpu
                        .map(|v| format!("{v:.3} us"))
                        .unwrap_or_else(|| "-".into()),
                    s.rss.map(kib).unwrap_or_else(|| "-".into()),
                    s.n,
                    notes.join("; ")
                );
            }
            let ratios = ratio_lines(&rows);
            if !ratios.is_empty() {
                md.push_str("\nOurs / anchor (throughput: higher is better; CPU per request: lower is better). The last column is the CPU ratio in each round, ours and the anchor run back to back, lowest to highest:\n\n");
                md.push_str("| case | ours | anchor | throughput | server CPU / req | CPU / req, round by round |\n|---|---|---|--:|--:|--:|\n");
                md.push_str(&ratios);
            }
        }
        md
    }
}

/// A group's points round by round: in each round that every member has, the geometric
/// mean of the members' rates and CPU. (The geomean row's summary is taken from the
/// members' medians instead; these points serve the paired ratios.)
fn round_geomeans<'r>(members: impl Iterator<Item = &'r Row>) -> Vec<Point> {
    let members: Vec<&Row> = members.collect();
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let mut points = Vec::new();
    for round in first.points.iter().map(|p| p.round) {
        let of_round: Option<Vec<&Point>> = members
            .iter()
            .map(|m| m.points.iter().find(|p| p.round == round))
            .collect();
        let Some(of_round) = of_round else { continue };
        let rates: Vec<f64> = of_round.iter().map(|p| p.rate).collect();
        let cpus: Option<Vec<f64>> = of_round.iter().map(|p| p.cpu_us).collect();
        if let Some(rate) = geomean(&rates) {
            points.push(Point {
                round,
                rate,
                cpu_us: cpus.and_then(|c| geomean(&c)),
                ..Point::default()
            });
        }
    }
    points
}

/// The CPU ratio of ours to an anchor in each round (the two ran one after the other, so
/// the machine's slow drift cancels), as `min-max` over the rounds; `-` with fewer than
/// two rounds in common.
fn paired_cpu_range(ours: &Row, anchor: &Row) -> String {
    let mut ratios: Vec<f64> = ours
        .points
        .iter()
        .filter_map(|o| {
            let a = anchor.points.iter().find(|a| a.round == o.round)?;
            match (o.cpu_us, a.cpu_us) {
                (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                _ => None,
            }
        })
        .collect();
    if ratios.len() < 2 {
        return "-".into();
    }
    ratios.sort_by(f64::total_cmp);
    format!("{:.2}-{:.2}x", ratios[0], ratios[ratios.len() - 1])
}

/// The name of `system`'s twin from an A/B run's baseline revision `rev`.
pub fn twin_name(system: &str, rev: &str) -> String {
    format!("{system} @ {rev}")
}

/// The system a baseline twin stands for, if `anchor` is one.
fn twin_of(anchor: &str) -> Option<&str> {
    anchor.rsplit_once(" @ ").map(|(system, _)| system)
}

fn ratio_lines(rows: &[(Row, Summary)]) -> String {
    let mut md = String::new();
    for (ours, o) in rows.iter().filter(|(r, _)| r.ours) {
        if o.rate.is_none() {
            continue;
        }
        // Each of ours against every anchor, and against its own baseline twin only.
        let compared = |r: &Row| twin_of(&r.system).is_none_or(|s| s == ours.system);
        for (anchor, a) in rows
            .iter()
            .filter(|(r, _)| !r.ours && r.case == ours.case && compared(r))
        {
            let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) if y > 0.0 => ratio_text(x / y),
                _ => "-".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                ours.case,
                ours.system,
                anchor.system,
                ratio(o.rate, a.rate),
                ratio(o.cpu, a.cpu),
                paired_cpu_range(ours, anchor)
            );
        }
    }
    md
}

/// A ratio as `1.23x`; a small one also as its inverse, which is how a bar such as "20x
/// less CPU" is stated (`0.054x` alone hides whether that is 18x or 20x).
fn ratio_text(r: f64) -> String {
    if r > 0.0 && r < 0.5 {
        format!("{r:.3}x ({:.1}x less)", 1.0 / r)
    } else {
        format!("{r:.2}x")
    }
}

fn rate(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Bytes => {
            if v >= 1024.0 * 1024.0 * 1024.0 {
                format!("{:.2} GiB/s", v / (1024.0 * 1024.0 * 1024.0))
            } else {
                format!("{:.1} MiB/s", v / (1024.0 * 1024.0))
            }
        }
        Unit::Requests | Unit::Messages | Unit::Joins | Unit::Handshakes => {
            let what = match unit {
                Unit::Requests => "req/s",
                Unit::Messages => "msg/s",
                Unit::Handshakes => "conn/s",
                _ => "joins/s",
            };
            if v >= 1e6 {
                format!("{:.2} M {what}", v / 1e6)
            } else {
                format!("{:.1} k {what}", v / 1e3)
            }
        }
    }
}

fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} us")
    }
}

fn kib(v: f64) -> String {
    if v >= 1024.0 {
        format!("{:.1} MiB", v / 1024.0)
    } else {
        format!("{v:.0} KiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_geomean() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        let g = geomean(&[1.0, 4.0]).unwrap_or(0.0);
        assert!((g - 2.0).abs() < 1e-9);
    }

    #[test]
    fn paired_ratios_range_over_rounds_also_for_geomeans() {
        let mut t = Table::default();
        let key = |case, system, ours| Key {
            scenario: 2,
            case,
            group: Some("g"),
            system,
            ours,
            unit: Unit::Requests,
        };
        let point = |round, cpu| Point {
            round,
            rate: 10.0,
            cpu_us: Some(cpu),
            ..Point::default()
        };
        for (round, ours_cpu) in [(1, 1.0), (2, 1.2), (3, 0.9)] {
            t.add(&key("a", "ours", true), point(round, ours_cpu));
            t.add(&key("a", "anchor", false), point(round, 1.0));
            // Case b: ours is always 4x the anchor, so each round's geomean ratio is
            // sqrt(case a's ratio * 4).
            t.add(&key("b", "ours", true), point(round, 4.0));
            t.add(&key("b", "anchor", false), point(round, 1.0));
        }
        let md = t.markdown(&[(2, "s")]);
        assert!(
            md.contains("| a | ours | anchor | 1.00x | 1.00x | 0.90-1.20x |"),
            "{md}"
        );
        assert!(
            md.contains("| b | ours | anchor | 1.00x | 4.00x | 4.00-4.00x |"),
            "{md}"
        );
        // sqrt(0.9 * 4) = 1.90, sqrt(1.2 * 4) = 2.19.
        assert!(
            md.contains("| geomean g | ours | anchor | 1.00x | 2.00x | 1.90-2.19x |"),
            "{md}"
        );
    }

    #[test]
    fn small_ratios_are_also_shown_inverted() {
        assert_eq!(ratio_text(1.0), "1.00x");
        assert_eq!(ratio_text(0.5), "0.50x");
        assert_eq!(ratio_text(0.0543), "0.054x (18.4x less)");
    }

    #[test]
    fn ratios_compare_ours_with_each_anchor_of_the_same_case() {
        let mut t = Table::default();
        let key = |system, ours| Key {
            scenario: 1,
            case: "c",
            group: None,
            system,
            ours,
            unit: Unit::Requests,
        };
        let point = |rate, cpu| Point {
            rate,
            cpu_us: Some(cpu),
            ..Point::default()
        };
        t.add(&key("ours", true), point(200.0, 1.0));
        t.add(&key("anchor", false), point(100.0, 4.0));
        let md = t.markdown(&[(1, "s")]);
        assert!(
            md.contains("| c | ours | anchor | 2.00x | 0.250x (4.0x less) |"),
            "{md}"
        );
    }

    #[test]
    fn a_baseline_twin_is_compared_with_its_own_system_only() {
        let mut t = Table::default();
        let key = |system, ours| Key {
            scenario: 1,
            case: "c",
            group: None,
            system,
            ours,
            unit: Unit::Requests,
        };
        let point = |rate| Point {
            rate,
            cpu_us: Some(1.0),
            ..Point::default()
        };
        let a_twin = twin_name("a", "HEAD~1");
        let b_twin = twin_name("b", "HEAD~1");
        t.add(&key("a", true), point(120.0));
        t.add(&key(&a_twin, false), point(100.0));
        t.add(&key("b", true), point(50.0));
        t.add(&key(&b_twin, false), point(100.0));
        t.add(&key("anchor", false), point(100.0));
        let md = t.markdown(&[(1, "s")]);
        assert!(md.contains("| c | a | a @ HEAD~1 | 1.20x |"), "{md}");
        assert!(md.contains("| c | b | b @ HEAD~1 | 0.50x"), "{md}");
        assert!(md.contains("| c | a | anchor | 1.20x |"), "{md}");
        assert!(!md.contains("| c | a | b @ HEAD~1 |"), "{md}");
        assert!(!md.contains("| c | b | a @ HEAD~1 |"), "{md}");
    }
}
