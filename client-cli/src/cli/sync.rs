//! `fieldsync sync`: push what waits on this device, pull what is new, and say what happened.

use fieldsync_client::engine::{self, Progress};
use fieldsync_protocol::media::show_size;

use super::Settings;

/// Send local changes to the server and fetch new surveys and changes.
///
/// Safe to interrupt and run again: it resumes where it stopped and nothing is lost.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// `, about 2 min left` from the pace so far (nothing until there is a pace to go by).
fn eta(elapsed: std::time::Duration, done: u64, total: u64) -> String {
    if done == 0 || done >= total || elapsed.as_secs_f64() < 1.0 {
        return String::new();
    }
    let left = elapsed.as_secs_f64() / done as f64 * (total - done) as f64;
    if left < 90.0 {
        format!(", about {:.0} s left", left.max(1.0))
    } else {
        format!(", about {:.0} min left", left / 60.0)
    }
}

pub fn run(_args: Args, s: &Settings) -> anyhow::Result<u8> {
    let mut store = s.open_store()?;
    let client = super::api(&store)?;
    let bar = super::progress_bar(None);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = std::time::Instant::now();
    let result = engine::sync(&mut store, &client, &mut |p| match p {
        Progress::Pushing { done, total, bytes } => {
            bar.set_message(format!(
                "pushing {done}/{total} responses, {} sent{}",
                show_size(bytes),
                eta(started.elapsed(), done, total)
            ));
            bar.tick();
        }
        Progress::Pulling {
            docs,
            bytes,
            cursor,
        } => {
            bar.set_message(format!(
                "pulling: {docs} responses, {} received (cursor {cursor})",
                show_size(bytes)
            ));
            bar.tick();
        }
        Progress::Uploading { done, total } => {
            bar.set_message(format!(
                "uploading files: {} of {}",
                show_size(done),
                show_size(total)
            ));
            bar.tick();
        }
    });
    bar.finish_and_clear();
    let report = result?;
    if s.json {
        s.print_json(&report)?;
    } else {
        outln!(
            "pushed {} response(s) ({} new change(s), {} already there; {})",
            report.pushed_docs,
            report.pushed_changes,
            report.duplicate_changes,
            show_size(report.pushed_bytes)
        );
        if report.media_uploaded > 0 || report.media_bytes_sent > 0 {
            outln!(
                "uploaded {} file(s) ({} sent)",
                report.media_uploaded,
                show_size(report.media_bytes_sent)
            );
        }
        outln!(
            "pulled {} response(s), {} survey update(s) ({})",
            report.pulled_docs,
            report.surveys_updated,
            show_size(report.pulled_bytes)
        );
        for s in &report.surveys_arrived {
            match &s.label {
                Some(label) => outln!(
                    "  survey {} version {label} (number {}) arrived",
                    s.form_id,
                    s.version
                ),
                None => outln!(
                    "  survey {} version number {} arrived",
                    s.form_id,
                    s.version
                ),
            }
        }
        if report.requeued > 0 {
            outln!(
                "the server was restored from a backup: {} response(s) held here were pushed again, so it has everything this device had",
                report.requeued
            );
        }
        if !report.new_conflicts.is_empty() {
            outln!(
                "{} response(s) now have conflicting answers; `fieldsync response conflicts` shows them",
                report.new_conflicts.len()
            );
        }
        if !report.rejected.is_empty() {
            outln!(
                "{} response(s) refused by the server (kept on this device):",
                report.rejected.len()
            );
            for (id, why) in &report.rejected {
                outln!("  {id}: {why}");
            }
        }
        if !report.media_refused.is_empty() {
            outln!(
                "{} file(s) refused by the server (kept on this device):",
                report.media_refused.len()
            );
            for (name, why) in &report.media_refused {
                outln!("  {name}: {why}");
            }
        }
        if !report.erased.is_empty() {
            outln!(
                "{} response(s) were erased on the server (a respondent's request or the end of a retention period) and deleted from this device:",
                report.erased.len()
            );
            for id in &report.erased {
                outln!("  {id}");
            }
        }
        if !report.unreadable.is_empty() {
            outln!(
                "{} response(s) from the server could not be read and were set aside:",
                report.unreadable.len()
            );
            for (id, why) in &report.unreadable {
                outln!("  {id}: {why}");
            }
        }
    }
    // Everything was exchanged, but some responses were refused: say so to scripts too.
    if report.rejected.is_empty() && report.media_refused.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "{} response(s) and {} file(s) were refused by the server; `fieldsync status` lists them",
            report.rejected.len(),
            report.media_refused.len()
        );
        Ok(fieldsync_client::exit::INVALID)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn the_time_left_follows_the_pace_so_far() {
        assert_eq!(
            super::eta(Duration::from_secs(10), 100, 200),
            ", about 10 s left"
        );
        assert_eq!(
            super::eta(Duration::from_secs(60), 100, 300),
            ", about 2 min left"
        );
        assert_eq!(super::eta(Duration::from_secs(10), 0, 200), "");
        assert_eq!(
            super::eta(Duration::from_millis(10), 5, 200),
            "",
            "no pace yet"
        );
        assert_eq!(super::eta(Duration::from_secs(10), 200, 200), "");
    }
}
