//! Generators of the people-like objects: users, accounts, contacts, leads.

use chrono::Duration;

use super::columns::{Audit, Columns, Ctx, date, datetime, full_name, maybe, phone};
use super::names::{
    CITIES, CITY_PLACES, COMPANY_HEADS, COMPANY_TAILS, QUIZZES, STREETS, TITLES, USERS, slug,
};
use super::{contact_email, contact_person, h, lead_email, lead_person, pick};
use crate::simulator::objects::{
    ACCOUNT_TAGS, ACCOUNT_TYPES, INDUSTRIES, LEAD_STATUSES, lead_sources,
};
use crate::simulator::store::{Store, Value};

pub fn users(store: &mut Store, ctx: &Ctx) {
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

/// Positions of an address compound's components (`Billing...`).
struct AddressColumns([usize; 7]);

impl AddressColumns {
    fn of(cols: &Columns, prefix: &str) -> AddressColumns {
        let names = [
            "Street",
            "City",
            "State",
            "PostalCode",
            "Country",
            "Latitude",
            "Longitude",
        ];
        AddressColumns(names.map(|part| cols.index_of(&format!("{prefix}{part}"))))
    }

    /// A street address in city number `city` of [`CITIES`]; geocoded
    /// (latitude and longitude set) unless `x % 4 == 3`.
    fn fill(&self, row: &mut [Value], city: usize, x: u64) {
        let [
            street,
            city_col,
            state,
            postal,
            country,
            latitude,
            longitude,
        ] = self.0;
        let (state_name, code, country_name, lat, lon) = CITY_PLACES[city % CITY_PLACES.len()];
        row[street] = Value::text(format!("{} {}", 1 + (x >> 8) % 400, pick(STREETS, x >> 20)));
        row[city_col] = Value::text(CITIES[city % CITIES.len()]);
        row[state] = maybe(!state_name.is_empty(), || Value::text(state_name));
        row[postal] = Value::text(code);
        row[country] = Value::text(country_name);
        if x % 4 != 3 {
            row[latitude] = Value::Double(lat);
            row[longitude] = Value::Double(lon);
        }
    }
}

pub fn accounts(store: &mut Store, ctx: &Ctx) {
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
        tags,
        discount,
        opens_at,
        latitude,
        longitude,
    ] = cols.indices([
        "Name",
        "Industry",
        "Type",
        "AnnualRevenue",
        "NumberOfEmployees",
        "Website",
        "Phone",
        "WM_Tags__c",
        "WM_Discount__c",
        "WM_Opens_At__c",
        "WM_Site__Latitude__s",
        "WM_Site__Longitude__s",
    ]);
    let billing = AddressColumns::of(&cols, "Billing");
    let [page_views] = cols.indices(["WM_Page_Views__c"]);
    for i in 0..ctx.sizes.accounts {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "001", 600, i);
        let head = pick(COMPANY_HEADS, h(601, i));
        let tail = pick(COMPANY_TAILS, h(602, i));
        let x = h(603, i);
        let millions = (x >> 32) % 500;
        row[name] = Value::text(format!("{head} {tail}"));
        row[industry] = maybe(!x.is_multiple_of(7), || {
            Value::text(pick(INDUSTRIES, x >> 8))
        });
        row[kind] = Value::text(pick(ACCOUNT_TYPES, x >> 20));
        row[revenue] = maybe(millions >= 50, || {
            Value::Double((millions * 100_000) as f64)
        });
        row[employees] = Value::Int(((x >> 40) % 5_000 + 5) as i64);
        row[website] = Value::text(format!("https://www.{}{}.example", slug(head), slug(tail)));
        row[phone_col] = phone(h(604, i));
        // The city as before addresses were seeded, so values stay put.
        let city = (h(605, i) % CITIES.len() as u64) as usize;
        billing.fill(&mut row, city, h(607, i));
        let views = h(608, i);
        // Past 2^31: a long needs its 64 bits.
        row[page_views] = maybe(!views.is_multiple_of(6), || {
            Value::Int(((views >> 8) % 20_000_000_000) as i64)
        });
        let y = h(606, i);
        // Picklist order, as Salesforce stores a multi-select value.
        let picked: Vec<&str> = ACCOUNT_TAGS
            .iter()
            .enumerate()
            .filter(|(bit, _)| y >> bit & 1 == 1)
            .map(|(_, t)| *t)
            .collect();
        row[tags] = maybe(!picked.is_empty(), || Value::text(picked.join(";")));
        row[discount] = maybe(!y.is_multiple_of(3), || {
            Value::Double(((y >> 8) % 2_500) as f64 / 100.0)
        });
        row[opens_at] = Value::text(format!(
            "{:02}:{:02}:00.000Z",
            7 + (y >> 20) % 4,
            (y >> 24) % 4 * 15
        ));
        row[latitude] = maybe(!y.is_multiple_of(5), || {
            Value::Double(((y >> 28) % 140_000_000) as f64 / 1e6 - 70.0)
        });
        row[longitude] = maybe(!y.is_multiple_of(5), || {
            Value::Double(((y >> 40) % 360_000_000) as f64 / 1e6 - 180.0)
        });
        cols.insert(store, row);
    }
}

pub fn contacts(store: &mut Store, ctx: &Ctx) {
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
    let mailing = AddressColumns::of(&cols, "Mailing");
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
        row[title] = maybe(!x.is_multiple_of(5), || Value::text(pick(TITLES, x >> 8)));
        row[account] = maybe(i % 15 != 14, || ctx.id("001", i / 10));
        row[source] = maybe(!(x >> 16).is_multiple_of(4), || {
            Value::text(pick(lead_sources(), x >> 20))
        });
        row[opted_out] = Value::Bool((x >> 28).is_multiple_of(12));
        row[birthdate] = maybe(!born.is_multiple_of(3), || {
            Value::Date(date(0) - Duration::days(7_000 + (born >> 8) as i64 % 18_000))
        });
        row[nps] = maybe(score.is_multiple_of(8), || {
            Value::Double(((score >> 8) % 11) as f64)
        });
        let place = h(706, i);
        if !place.is_multiple_of(5) {
            mailing.fill(&mut row, (place >> 32) as usize % CITIES.len(), place);
        }
        if quiz.is_multiple_of(10) {
            row[quiz_date] = Value::Date(date(5 * 365 + (quiz >> 8) % 300));
            row[quiz_name] = Value::text(pick(QUIZZES, quiz >> 20));
        }
        cols.insert(store, row);
    }
}

pub fn leads(store: &mut Store, ctx: &Ctx) {
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
        row[source] = maybe(!(x >> 16).is_multiple_of(3), || {
            Value::text(pick(lead_sources(), x >> 20))
        });
        let walkme = h(803 ^ ctx.org_salt, i);
        if walkme.is_multiple_of(4) {
            let first_at = 5 * 365 * 86_400 + (walkme >> 8) % (200 * 86_400);
            let last_at = first_at + (walkme >> 20) % (150 * 86_400);
            row[first_login] = Value::DateTime(datetime(first_at));
            row[last_login] = Value::DateTime(datetime(last_at));
            row[logins] = Value::Double(((walkme >> 40) % 41) as f64);
        }
        cols.insert(store, row);
    }
}
