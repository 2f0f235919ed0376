//! Measurements and the tables they are printed as.

use std::time::Duration;

/// Latencies of one workload and how long it took in all.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub ops: u64,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Sample {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }
}

/// Runs `total` operations spread over `workers` tasks; `op(worker, i)` performs one. Each
/// operation's latency is recorded.
pub async fn concurrently<F, Fut>(workers: usize, total: u64, op: F) -> anyhow::Result<Sample>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = std::sync::Arc::new(op);
    let per = total / workers as u64;
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per as usize);
            for i in 0..per {
                let t = std::time::Instant::now();
                op(w, i).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total as usize);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Sample {
        ops: per * workers as u64,
        elapsed: start.elapsed(),
        latencies,
    })
}

/// How a row is compared across backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Throughput: more ops/s wins.
    Throughput,
    /// Latency: lower p99 wins.
    Latency,
}

pub struct Row {
    pub name: String,
    pub better: Better,
    pub samples: Vec<Sample>,
}

pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else {
        format!("{:.2}ms", us / 1000.0)
    }
}

pub fn fmt_rate(r: f64) -> String {
    if r >= 1000.0 {
        format!("{:.1}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

/// Prints one table: per column (backend) ops/s, p50 and p99; with two columns, a last column
/// "speedup" = how many times the first beats the second (>1 = first is better).
pub fn print_table(title: &str, columns: &[&str], rows: &[Row]) {
    println!("\n{title}");
    let mut header = format!("{:<34}", "workload");
    for c in columns {
        header.push_str(&format!(
            " | {:>10} {:>9} {:>9}",
            format!("{c} ops"),
            "p50",
            "p99"
        ));
    }
    if columns.len() == 2 {
        header.push_str(&format!(" | {:>8}", "speedup"));
    }
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for row in rows {
        let mut line = format!("{:<34}", row.name);
        for s in &row.samples {
            line.push_str(&format!(
                " | {:>10} {:>9} {:>9}",
                fmt_rate(s.ops_per_sec()),
                fmt_duration(s.percentile(50.0)),
                fmt_duration(s.percentile(99.0))
            ));
        }
        if let [a, b] = row.samples.as_slice() {
            let speedup = match row.better {
                Better::Throughput => a.ops_per_sec() / b.ops_per_sec().max(1e-9),
                Better::Latency => {
                    b.percentile(99.0).as_secs_f64() / a.percentile(99.0).as_secs_f64().max(1e-9)
                }
            };
            line.push_str(&format!(" | {speedup:>7.2}x"));
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranked_values() {
        let s = Sample {
            ops: 100,
            elapsed: Duration::from_secs(1),
            latencies: (1..=100).map(Duration::from_millis).collect(),
        };
        assert_eq!(s.percentile(50.0), Duration::from_millis(51));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.ops_per_sec().round(), 100.0);
        assert_eq!(Sample::default().percentile(99.0), Duration::ZERO);
    }
}
