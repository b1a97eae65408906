//! Regenerates `catalog/demo/nps_score.csv` from the simulator's seeded
//! contacts, so the demo report matches the demo org:
//! `cargo run --example make_demo_reports`.

use sfsql::simulator::contact_email;

fn main() -> std::io::Result<()> {
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
