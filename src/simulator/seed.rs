//! Deterministic seeded data of an org, and the email rules that demo
//! reports are built to match.
//!
//! Every value of record `i` is a pure function of `i` (and, for a few
//! fields, the org), never of the configured size, so the first 1,000
//! contacts are the same at any scale. There is no randomness: values come
//! from a SplitMix64 hash of the index.
//!
//! # Contact email rule ([`contact_email`])
//!
//! For contact `i` (from 0), the same in both orgs (a sandbox is a copy):
//! - `i % 40 == 7`: no email (null);
//! - `i % 50 == 23`: contact `i - 1`'s email in UPPER CASE (the same person
//!   entered twice, so a case-insensitive match finds two contacts);
//! - otherwise `first.last{i}@{domain}` in lower case (`last{i}@{domain}`
//!   when the contact has no first name), with names folded to ASCII
//!   (`O'Brien` → `obrien`); and when `i % 60 == 11` it is mixed case,
//!   `Ann.Lee11@Example.com`.
//!
//! # Lead email rule ([`lead_email`])
//!
//! Lead `i`: null when `i % 30 == 4`, else `{initial}{last}{i}@{company}.example`
//! in lower case.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::HashMap;

use super::ids::{make_id, seq_for_index};
use super::names::*;
use super::objects::{
    ACCOUNT_TYPES, CAMPAIGN_STATUSES, CAMPAIGN_TYPES, INDUSTRIES, LEAD_STATUSES, MEMBER_STATUSES,
    TASK_STATUSES, lead_sources,
};
use super::schema::{ObjId, schema};
use super::store::{Store, Value};

/// Record counts of an org seeded with `contacts` contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub accounts: usize,
    pub contacts: usize,
    pub leads: usize,
    pub users: usize,
    pub campaigns: usize,
    pub tasks: usize,
    pub events: usize,
    pub campaign_members: usize,
}

impl Sizes {
    pub fn for_contacts(contacts: usize) -> Sizes {
        Sizes {
            // Rounded up so that contact i's account (i / 10) always exists.
            accounts: contacts.div_ceil(10).max(5),
            contacts,
            leads: contacts / 2,
            users: USERS.len(),
            campaigns: CAMPAIGN_NAMES.len(),
            tasks: contacts / 20,
            events: contacts / 20,
            campaign_members: contacts / 50,
        }
    }
}

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of record `i` for one field (`salt`).
fn h(salt: u64, i: usize) -> u64 {
    mix(mix(salt) ^ i as u64)
}

fn pick<T: Copy>(list: &[T], x: u64) -> T {
    list[(x % list.len() as u64) as usize]
}

fn is_duplicate_contact(i: usize) -> bool {
    i % 50 == 23
}

/// First and last name of contact `i`; a duplicate repeats the person before it.
fn contact_person(i: usize) -> (Option<&'static str>, &'static str) {
    let src = if is_duplicate_contact(i) { i - 1 } else { i };
    let first = (src % 70 != 33).then(|| pick(FIRST_NAMES, h(1, src)));
    (first, pick(LAST_NAMES, h(2, src)))
}

fn base_contact_email(i: usize) -> String {
    let (first, last) = contact_person(i);
    let domain = pick(DOMAINS, h(3, i));
    match first {
        Some(f) => format!("{}.{}{i}@{domain}", slug(f), slug(last)),
        None => format!("{}{i}@{domain}", slug(last)),
    }
}

/// Capitalises each dot-separated part of the local part and the first
/// letter of the domain: `ann.lee11@example.com` → `Ann.Lee11@Example.com`.
fn mixed_case(email: &str) -> String {
    let mut out = String::with_capacity(email.len());
    let mut capitalise = true;
    let mut in_domain = false;
    for c in email.chars() {
        if capitalise && c.is_ascii_alphabetic() {
            out.push(c.to_ascii_uppercase());
            capitalise = false;
        } else {
            out.push(c);
        }
        if c == '@' {
            in_domain = true;
            capitalise = true;
        } else if c == '.' && !in_domain {
            capitalise = true;
        }
    }
    out
}

/// Email of contact `i` (from 0) in `org`; see the module docs for the rule.
/// Production and sandbox share emails.
pub fn contact_email(_org: &str, i: usize) -> Option<String> {
    if i % 40 == 7 {
        return None;
    }
    if is_duplicate_contact(i) {
        return Some(base_contact_email(i - 1).to_uppercase());
    }
    let email = base_contact_email(i);
    Some(if i % 60 == 11 {
        mixed_case(&email)
    } else {
        email
    })
}

fn lead_person(i: usize) -> (&'static str, &'static str, &'static str) {
    (
        pick(FIRST_NAMES, h(11, i)),
        pick(LAST_NAMES, h(12, i)),
        pick(COMPANY_HEADS, h(13, i)),
    )
}

/// Email of lead `i` (from 0) in `org`; see the module docs for the rule.
pub fn lead_email(_org: &str, i: usize) -> Option<String> {
    if i % 30 == 4 {
        return None;
    }
    let (first, last, company) = lead_person(i);
    let initial: String = slug(first).chars().take(1).collect();
    Some(format!(
        "{initial}{}{i}@{}.example",
        slug(last),
        slug(company)
    ))
}

/// Column positions of one object, by exact API name.
struct Columns {
    obj: ObjId,
    width: usize,
    by_name: HashMap<&'static str, usize>,
}

impl Columns {
    fn of(name: &str) -> Columns {
        let obj = schema().object_id(name).unwrap_or_default();
        let def = schema().object(obj);
        Columns {
            obj,
            width: def.fields.len(),
            by_name: def
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name, i))
                .collect(),
        }
    }

    /// Positions of `names`, looked up once per object rather than per record.
    fn indices<const N: usize>(&self, names: [&'static str; N]) -> [usize; N] {
        names.map(|n| {
            debug_assert!(self.by_name.contains_key(n), "no field {n}");
            self.by_name.get(n).copied().unwrap_or(self.width)
        })
    }

    fn row(&self) -> Vec<Value> {
        // One spare slot absorbs writes to a misspelt column in release builds.
        vec![Value::Null; self.width + 1]
    }

    fn insert(&self, store: &mut Store, mut row: Vec<Value>) {
        row.truncate(self.width);
        store.table_mut(self.obj).insert(row.into());
    }
}

/// Positions of the id, owner and audit fields.
struct Audit {
    fields: [usize; 7],
    owner: Option<usize>,
}

impl Audit {
    fn of(cols: &Columns) -> Audit {
        Audit {
            fields: cols.indices([
                "Id",
                "IsDeleted",
                "CreatedDate",
                "LastModifiedDate",
                "SystemModstamp",
                "CreatedById",
                "LastModifiedById",
            ]),
            owner: cols.by_name.get("OwnerId").copied(),
        }
    }

    /// Sets the id, owner and audit fields of record `i`.
    fn fill(&self, row: &mut [Value], ctx: &Ctx, prefix: &str, salt: u64, i: usize) {
        let [
            id,
            deleted,
            created_date,
            modified_date,
            stamp,
            created_by,
            modified_by,
        ] = self.fields;
        let created = h(salt + 100, i) % (5 * 365 * 86_400);
        let modified = created + h(salt + 101, i) % (400 * 86_400);
        row[id] = ctx.id(prefix, i);
        row[deleted] = Value::Bool(false);
        row[created_date] = Value::DateTime(datetime(created));
        row[modified_date] = Value::DateTime(datetime(modified));
        row[stamp] = Value::DateTime(datetime(modified));
        row[created_by] = ctx.user((h(salt + 102, i) % 20) as usize);
        row[modified_by] = ctx.user((h(salt + 103, i) % 20) as usize);
        if let Some(owner) = self.owner {
            row[owner] = ctx.user(1 + (h(salt + 104, i) % 19) as usize);
        }
    }
}

/// Per-org facts the generators need.
struct Ctx<'a> {
    org: &'a str,
    pod: &'a str,
    /// Mixed into fields that differ between production and sandbox.
    org_salt: u64,
    sizes: Sizes,
    users: Vec<Value>,
}

impl Ctx<'_> {
    fn id(&self, prefix: &str, i: usize) -> Value {
        Value::text(make_id(prefix, self.pod, seq_for_index(i)))
    }
    fn user(&self, i: usize) -> Value {
        self.users[i % self.users.len()].clone()
    }
}

fn date(days_from_2019: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2019, 1, 1).unwrap_or_default() + Duration::days(days_from_2019 as i64)
}

fn datetime(secs_from_2019: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_546_300_800 + secs_from_2019 as i64, 0).unwrap_or_default()
}

fn phone(x: u64) -> Value {
    let area = 200 + x % 700;
    let line = (x >> 12) % 10_000;
    Value::text(match (x >> 30) % 10 {
        0 => return Value::Null,
        1..=4 => format!("({area}) 555-{line:04}"),
        5..=7 => format!("+1 {area} 555 {line:04}"),
        _ => format!("{area}.555.{line:04}"),
    })
}

fn full_name(first: Option<&str>, last: &str) -> Value {
    Value::text(match first {
        Some(f) => format!("{f} {last}"),
        None => last.to_string(),
    })
}

fn maybe(present: bool, value: impl FnOnce() -> Value) -> Value {
    if present { value() } else { Value::Null }
}

fn users(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("User");
    let audit = Audit::of(&cols);
    let [username, email, first_name, last_name, name, active, title] = cols.indices([
        "Username",
        "Email",
        "FirstName",
        "LastName",
        "Name",
        "IsActive",
        "Title",
    ]);
    let sandbox_suffix = if ctx.org == "sandbox" { ".sandbox" } else { "" };
    for (i, (first, last, job)) in USERS.iter().enumerate() {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "005", 500, i);
        let local = if i == 0 {
            "integration".to_string()
        } else {
            format!("{}.{}", slug(first), slug(last))
        };
        row[username] = Value::text(format!("{local}@sfsql-demo.example{sandbox_suffix}"));
        row[email] = Value::text(format!("{local}@{}-corp.example.com", ctx.org));
        row[first_name] = Value::text(*first);
        row[last_name] = Value::text(*last);
        row[name] = full_name(Some(first), last);
        row[active] = Value::Bool(i != 17 && i != 19);
        row[title] = Value::text(*job);
        cols.insert(store, row);
    }
}

fn accounts(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("Account");
    let audit = Audit::of(&cols);
    let [
        name,
        industry,
        kind,
        revenue,
        employees,
        website,
        phone_col,
        city,
    ] = cols.indices([
        "Name",
        "Industry",
        "Type",
        "AnnualRevenue",
        "NumberOfEmployees",
        "Website",
        "Phone",
        "BillingCity",
    ]);
    for i in 0..ctx.sizes.accounts {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "001", 600, i);
        let head = pick(COMPANY_HEADS, h(601, i));
        let tail = pick(COMPANY_TAILS, h(602, i));
        let x = h(603, i);
        let millions = (x >> 32) % 500;
        row[name] = Value::text(format!("{head} {tail}"));
        row[industry] = maybe(x % 7 != 0, || Value::text(pick(INDUSTRIES, x >> 8)));
        row[kind] = Value::text(pick(ACCOUNT_TYPES, x >> 20));
        row[revenue] = maybe(millions >= 50, || {
            Value::Double((millions * 100_000) as f64)
        });
        row[employees] = Value::Int(((x >> 40) % 5_000 + 5) as i64);
        row[website] = Value::text(format!("https://www.{}{}.example", slug(head), slug(tail)));
        row[phone_col] = phone(h(604, i));
        row[city] = Value::text(pick(CITIES, h(605, i)));
        cols.insert(store, row);
    }
}

fn contacts(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("Contact");
    let audit = Audit::of(&cols);
    let [
        first_name,
        last_name,
        name,
        email,
        phone_col,
        title,
        account,
        source,
        opted_out,
    ] = cols.indices([
        "FirstName",
        "LastName",
        "Name",
        "Email",
        "Phone",
        "Title",
        "AccountId",
        "LeadSource",
        "HasOptedOutOfEmail",
    ]);
    let [birthdate, nps, quiz_date, quiz_name] = cols.indices([
        "Birthdate",
        "WM_NPS_Score__c",
        "WM_Quiz_Date__c",
        "WM_Quiz_Name__c",
    ]);
    for i in 0..ctx.sizes.contacts {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "003", 700, i);
        let (first, last) = contact_person(i);
        let x = h(702, i);
        let born = h(703, i);
        let score = h(704 ^ ctx.org_salt, i);
        let quiz = h(705 ^ ctx.org_salt, i);
        row[first_name] = Value::opt_text(first);
        row[last_name] = Value::text(last);
        row[name] = full_name(first, last);
        row[email] = Value::opt_text(contact_email(ctx.org, i));
        row[phone_col] = phone(h(701, i));
        row[title] = maybe(x % 5 != 0, || Value::text(pick(TITLES, x >> 8)));
        row[account] = maybe(i % 15 != 14, || ctx.id("001", i / 10));
        row[source] = maybe((x >> 16) % 4 != 0, || {
            Value::text(pick(lead_sources(), x >> 20))
        });
        row[opted_out] = Value::Bool((x >> 28) % 12 == 0);
        row[birthdate] = maybe(born % 3 != 0, || {
            Value::Date(date(0) - Duration::days(7_000 + (born >> 8) as i64 % 18_000))
        });
        row[nps] = maybe(score % 8 == 0, || Value::Double(((score >> 8) % 11) as f64));
        if quiz % 10 == 0 {
            row[quiz_date] = Value::Date(date(5 * 365 + (quiz >> 8) % 300));
            row[quiz_name] = Value::text(pick(QUIZZES, quiz >> 20));
        }
        cols.insert(store, row);
    }
}

fn leads(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("Lead");
    let audit = Audit::of(&cols);
    let [
        first_name,
        last_name,
        name,
        company_col,
        email,
        status,
        source,
    ] = cols.indices([
        "FirstName",
        "LastName",
        "Name",
        "Company",
        "Email",
        "Status",
        "LeadSource",
    ]);
    let [first_login, last_login, logins] = cols.indices([
        "WalkMe_First_Login__c",
        "WalkMe_Last_Login__c",
        "WalkMe_Logins_Last_30_Days__c",
    ]);
    for i in 0..ctx.sizes.leads {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "00Q", 800, i);
        let (first, last, company) = lead_person(i);
        let x = h(802, i);
        row[first_name] = Value::text(first);
        row[last_name] = Value::text(last);
        row[name] = full_name(Some(first), last);
        row[company_col] = Value::text(format!("{company} {}", pick(COMPANY_TAILS, h(801, i))));
        row[email] = Value::opt_text(lead_email(ctx.org, i));
        row[status] = Value::text(pick(LEAD_STATUSES, x));
        row[source] = maybe((x >> 16) % 3 != 0, || {
            Value::text(pick(lead_sources(), x >> 20))
        });
        let walkme = h(803 ^ ctx.org_salt, i);
        if walkme % 4 == 0 {
            let first_at = 5 * 365 * 86_400 + (walkme >> 8) % (200 * 86_400);
            let last_at = first_at + (walkme >> 20) % (150 * 86_400);
            row[first_login] = Value::DateTime(datetime(first_at));
            row[last_login] = Value::DateTime(datetime(last_at));
            row[logins] = Value::Double(((walkme >> 40) % 41) as f64);
        }
        cols.insert(store, row);
    }
}

fn campaigns(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("Campaign");
    let audit = Audit::of(&cols);
    let [name, status, active, start, kind] =
        cols.indices(["Name", "Status", "IsActive", "StartDate", "Type"]);
    for (i, campaign) in CAMPAIGN_NAMES.iter().enumerate() {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "701", 900, i);
        row[name] = Value::text(*campaign);
        row[status] = Value::text(pick(CAMPAIGN_STATUSES, h(901, i)));
        row[active] = Value::Bool(i % 2 == 0);
        row[start] = Value::Date(date(5 * 365 + 30 * i as u64));
        row[kind] = Value::text(pick(CAMPAIGN_TYPES, h(902, i)));
        cols.insert(store, row);
    }
}

/// Who/What of activity `i`: a contact or lead, and an account or campaign.
fn who_what(ctx: &Ctx, salt: u64, i: usize) -> (Value, Value) {
    let x = h(salt, i);
    let who = if x % 4 == 0 {
        ctx.id("00Q", i * 10 + (x >> 8) as usize % 10)
    } else {
        ctx.id("003", i * 20 + (x >> 8) as usize % 20)
    };
    let what = match (x >> 16) % 5 {
        0 => Value::Null,
        1 => ctx.id("701", i % CAMPAIGN_NAMES.len()),
        _ => ctx.id("001", i * 2),
    };
    (who, what)
}

fn tasks(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("Task");
    let audit = Audit::of(&cols);
    let [
        who,
        what,
        subject,
        due,
        status,
        priority,
        description,
        external,
    ] = cols.indices([
        "WhoId",
        "WhatId",
        "Subject",
        "ActivityDate",
        "Status",
        "Priority",
        "Description",
        "External_Activity_Id__c",
    ]);
    for i in 0..ctx.sizes.tasks {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "00T", 1000, i);
        let x = h(1002, i);
        (row[who], row[what]) = who_what(ctx, 1001, i);
        row[subject] = Value::text(pick(SUBJECTS, x));
        row[due] = Value::Date(date(5 * 365 + (x >> 8) % 400));
        row[status] = Value::text(pick(TASK_STATUSES, x >> 20));
        row[priority] = Value::text(pick(&["High", "Normal", "Normal", "Low"], x >> 24));
        row[description] = maybe((x >> 28) % 3 == 0, || {
            let topic = pick(SUBJECTS, x >> 32).to_lowercase();
            Value::text(format!("Notes from {topic}.\nNext step: follow up."))
        });
        row[external] = maybe(i % 2 == 0, || Value::text(format!("EXT-{i:07}")));
        cols.insert(store, row);
    }
}

fn events(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("Event");
    let audit = Audit::of(&cols);
    let [
        who,
        what,
        subject,
        start_col,
        end_col,
        activity,
        duration,
        location,
    ] = cols.indices([
        "WhoId",
        "WhatId",
        "Subject",
        "StartDateTime",
        "EndDateTime",
        "ActivityDateTime",
        "DurationInMinutes",
        "Location",
    ]);
    for i in 0..ctx.sizes.events {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "00U", 1100, i);
        let x = h(1102, i);
        let start = datetime(5 * 365 * 86_400 + ((x >> 8) % 9_000) * 3_600);
        let minutes = pick(&[15i64, 30, 30, 45, 60, 90], x >> 24);
        (row[who], row[what]) = who_what(ctx, 1101, i);
        row[subject] = Value::text(pick(SUBJECTS, x));
        row[start_col] = Value::DateTime(start);
        row[end_col] = Value::DateTime(start + Duration::minutes(minutes));
        row[activity] = Value::DateTime(start);
        row[duration] = Value::Int(minutes);
        row[location] = Value::text(pick(LOCATIONS, x >> 32));
        cols.insert(store, row);
    }
}

fn campaign_members(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("CampaignMember");
    let audit = Audit::of(&cols);
    let [campaign, contact, lead, status] =
        cols.indices(["CampaignId", "ContactId", "LeadId", "Status"]);
    for i in 0..ctx.sizes.campaign_members {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "00v", 1200, i);
        let x = h(1201, i);
        row[campaign] = ctx.id("701", i % CAMPAIGN_NAMES.len());
        if x % 4 == 0 {
            row[lead] = ctx.id("00Q", i * 25 + (x >> 8) as usize % 25);
        } else {
            row[contact] = ctx.id("003", i * 50 + (x >> 8) as usize % 50);
        }
        row[status] = Value::text(pick(MEMBER_STATUSES, x >> 20));
        cols.insert(store, row);
    }
}

/// All records of `org` (ids built on `pod`), sized by `contacts`.
pub fn seed(org: &str, pod: &str, contacts: usize) -> Store {
    let ctx = Ctx {
        org,
        pod,
        org_salt: if org == "production" { 0 } else { 0x5A4D_B0C5 },
        sizes: Sizes::for_contacts(contacts),
        users: (0..USERS.len())
            .map(|i| Value::text(make_id("005", pod, seq_for_index(i))))
            .collect(),
    };
    let mut store = Store::new();
    users(&mut store, &ctx);
    accounts(&mut store, &ctx);
    self::contacts(&mut store, &ctx);
    leads(&mut store, &ctx);
    self::campaigns(&mut store, &ctx);
    tasks(&mut store, &ctx);
    events(&mut store, &ctx);
    campaign_members(&mut store, &ctx);
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rule_has_nulls_duplicates_and_mixed_case() {
        assert_eq!(contact_email("production", 7), None);
        let dup = contact_email("production", 23).unwrap_or_default();
        let src = contact_email("production", 22).unwrap_or_default();
        assert_ne!(dup, src);
        assert_eq!(dup.to_lowercase(), src.to_lowercase());
        let mixed = contact_email("production", 11).unwrap_or_default();
        assert_ne!(mixed, mixed.to_lowercase());
        assert_eq!(contact_email("sandbox", 5), contact_email("production", 5));
    }

    #[test]
    fn records_do_not_depend_on_size() {
        let small = seed("production", "5g", 100);
        let large = seed("production", "5g", 1_000);
        let contact = schema().object_id("Contact").unwrap_or_default();
        for row in 0..100u32 {
            assert_eq!(
                small.table(contact).rows[row as usize],
                large.table(contact).rows[row as usize]
            );
        }
    }

    #[test]
    fn mixed_case_capitalises_parts() {
        assert_eq!(mixed_case("ann.lee11@example.com"), "Ann.Lee11@Example.com");
    }
}
#[cfg(test)]
mod timing_tmp {
    use super::*;
    #[test]
    fn timing_tmp() {
        let ctx = Ctx {
            org: "production",
            pod: "5g",
            org_salt: 0,
            sizes: Sizes::for_contacts(100_000),
            users: vec![Value::Null],
        };
        let mut store = Store::new();
        let t = std::time::Instant::now();
        contacts(&mut store, &ctx);
        eprintln!("contacts {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let n: usize = (0..100_000)
            .map(|i| make_id("003", "5g", seq_for_index(i)).len())
            .sum();
        eprintln!("ids {:?} {n}", t.elapsed());
        let cols = Columns::of("Contact");
        let t = std::time::Instant::now();
        let mut s2 = Store::new();
        let obj = cols.obj;
        for r in store.table(obj).rows.iter() {
            s2.table_mut(obj).insert(r.clone());
        }
        eprintln!("inserts {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let n: usize = (0..100_000)
            .filter_map(|i| contact_email("x", i))
            .map(|e| e.len())
            .sum();
        eprintln!("emails {:?} {n}", t.elapsed());
        leads(&mut store, &ctx);
        eprintln!("leads {:?}", t.elapsed());
    }
}
