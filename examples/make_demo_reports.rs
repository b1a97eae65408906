//! Regenerates the demo reports that follow the simulator's seeded contacts
//! (`catalog/demo/nps_score.csv`, `login_events.csv`,
//! `course_progress.parquet`), so the demo reports match the demo org:
//! `cargo run --example make_demo_reports`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Date32Array, Int32Array, RecordBatch, StringArray};
use datafusion::parquet::arrow::ArrowWriter;
use sfsql::simulator::contact_email;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    nps_score()?;
    login_events()?;
    course_progress()?;
    Ok(())
}

/// Emails of seeded contacts that are unique in the org, lower-cased.
fn unique_emails(count: usize) -> Vec<String> {
    (1..)
        .step_by(3)
        .filter_map(|i| {
            let this = contact_email("sandbox", i)?;
            let dup = |o: Option<String>| o.is_some_and(|o| o.eq_ignore_ascii_case(&this));
            (!dup(contact_email("sandbox", i - 1)) && !dup(contact_email("sandbox", i + 1)))
                .then(|| this.to_lowercase())
        })
        .take(count)
        .collect()
}

/// Raw login events of the analytics tool, one row per login; the
/// `reports.logins` view summarises them per user.
fn login_events() -> std::io::Result<()> {
    let mut csv = String::from("email,login_at\n");
    for (n, email) in unique_emails(30).iter().enumerate() {
        // From 1 to 9 logins, spread back from 22 November 2026 (the data
        // set's "today") over up to 80 days.
        let logins = 1 + n % 9;
        for k in 0..logins {
            let days_back = (k * (7 + n % 5) + n) % 80;
            let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
                .and_then(|d| d.checked_sub_days(chrono::Days::new(days_back as u64)))
                .ok_or_else(|| std::io::Error::other("date out of range"))?;
            let hour = 7 + (n + k) % 11;
            let minute = (n * 7 + k * 13) % 60;
            // The tool exports some addresses as typed at sign-up.
            let shown = if n % 6 == 0 {
                email.to_uppercase()
            } else {
                email.clone()
            };
            csv.push_str(&format!("{shown},{day}T{hour:02}:{minute:02}:00Z\n"));
        }
    }
    std::fs::write("catalog/demo/login_events.csv", csv)?;
    println!("wrote catalog/demo/login_events.csv");
    Ok(())
}

/// Course progress (who completed which course) as Parquet.
fn course_progress() -> Result<(), Box<dyn std::error::Error>> {
    let courses = ["Reporting 101", "Admin essentials", "Dashboards in depth"];
    let (mut emails, mut names, mut pct, mut done) = (vec![], vec![], vec![], vec![]);
    for (n, email) in unique_emails(24).into_iter().enumerate() {
        for (c, course) in courses.iter().enumerate().take(1 + n % 3) {
            let progress = ((n * 37 + c * 53) % 11) as i32 * 10;
            emails.push(email.clone());
            names.push(course.to_string());
            pct.push(progress);
            // Days since 1970-01-01: 2026-10-01 is 20727.
            done.push((progress == 100).then_some(20727 + ((n + c) % 50) as i32));
        }
    }
    let batch = RecordBatch::try_from_iter([
        ("email", Arc::new(StringArray::from(emails)) as ArrayRef),
        ("course", Arc::new(StringArray::from(names)) as ArrayRef),
        ("progress_pct", Arc::new(Int32Array::from(pct)) as ArrayRef),
        (
            "completed_on",
            Arc::new(Date32Array::from(done)) as ArrayRef,
        ),
    ])?;
    let file = std::fs::File::create("catalog/demo/course_progress.parquet")?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    println!("wrote catalog/demo/course_progress.parquet");
    Ok(())
}

/// NPS score per user, keyed by account email.
fn nps_score() -> std::io::Result<()> {
    let mut csv = String::from("account_email,nps_score,quiz_date,quiz_name\n");
    let quizzes = ["Onboarding basics", "Reporting 101", "Admin essentials"];
    let mut rows = 0;
    let mut i = 1;
    while rows < 120 {
        let prev = contact_email("sandbox", i - 1);
        let this = contact_email("sandbox", i);
        let next = contact_email("sandbox", i + 1);
        let same = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        // Keys that match exactly one contact: the seeded case-duplicates
        // are left to the ambiguity tests.
        if let Some(email) = &this
            && !same(&prev, &this)
            && !same(&this, &next)
        {
            // Analytics tools rarely keep the CRM's case.
            let key = if rows % 4 == 0 {
                email.to_uppercase()
            } else {
                email.to_lowercase()
            };
            let score = (rows * 7 + 3) % 11;
            let day = 1 + rows % 28;
            csv.push_str(&format!(
                "{key},{score},2026-10-{day:02},{}\n",
                quizzes[rows % quizzes.len()]
            ));
            rows += 1;
        }
        i += 2;
    }
    // Users the CRM does not know: they match nothing and create nothing.
    for n in 0..5 {
        csv.push_str(&format!(
            "not.in.crm{n}@example.org,{},2026-10-15,Reporting 101\n",
            n + 5
        ));
    }
    std::fs::write("catalog/demo/nps_score.csv", csv)?;
    println!("wrote catalog/demo/nps_score.csv");
    Ok(())
}
