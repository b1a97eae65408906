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

mod activities;
mod columns;
pub mod names;
mod people;

use names::{CAMPAIGN_NAMES, COMPANY_HEADS, DOMAINS, FIRST_NAMES, LAST_NAMES, USERS, slug};

use super::ids::{make_id, seq_for_index};
use super::store::{Store, Value};
use columns::Ctx;

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
    pub attachments: usize,
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
            attachments: contacts / 20,
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

/// Email of contact `i` (from 0) in `org`; production and sandbox share it.
///
/// - `i % 40 == 7`: `None` (the contact has no email);
/// - `i % 50 == 23`: contact `i - 1`'s email in upper case (a duplicate
///   person: a case-insensitive match finds both);
/// - otherwise `first.last{i}@{domain}` in lower case (`last{i}@{domain}`
///   without a first name), names folded to ASCII; mixed case
///   (`Ann.Lee11@Example.com`) when `i % 60 == 11`.
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

/// Email of lead `i` (from 0) in `org`: `None` when `i % 30 == 4`, else
/// `{initial}{last}{i}@{company}.example` in lower case.
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
    people::users(&mut store, &ctx);
    people::accounts(&mut store, &ctx);
    people::contacts(&mut store, &ctx);
    people::leads(&mut store, &ctx);
    activities::campaigns(&mut store, &ctx);
    activities::tasks(&mut store, &ctx);
    activities::events(&mut store, &ctx);
    activities::campaign_members(&mut store, &ctx);
    activities::attachments(&mut store, &ctx);
    store
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::schema::schema;

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
