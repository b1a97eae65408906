//! Generators of campaigns and activity-like objects: tasks, events and
//! campaign members, linked to the people generated before them.

use chrono::Duration;

use super::columns::{Audit, Columns, Ctx, date, datetime, maybe};
use super::names::{CAMPAIGN_NAMES, LOCATIONS, SUBJECTS};
use super::{h, pick};
use crate::simulator::objects::{
    CAMPAIGN_STATUSES, CAMPAIGN_TYPES, MEMBER_STATUSES, TASK_STATUSES,
};
use crate::simulator::store::{Store, Value};

pub fn campaigns(store: &mut Store, ctx: &Ctx) {
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
    let who = if x.is_multiple_of(4) {
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

pub fn tasks(store: &mut Store, ctx: &Ctx) {
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
        row[description] = maybe((x >> 28).is_multiple_of(3), || {
            let topic = pick(SUBJECTS, x >> 32).to_lowercase();
            Value::text(format!("Notes from {topic}.\nNext step: follow up."))
        });
        row[external] = maybe(i % 2 == 0, || Value::text(format!("EXT-{i:07}")));
        cols.insert(store, row);
    }
}

pub fn events(store: &mut Store, ctx: &Ctx) {
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

pub fn campaign_members(store: &mut Store, ctx: &Ctx) {
    let cols = Columns::of("CampaignMember");
    let audit = Audit::of(&cols);
    let [campaign, contact, lead, status] =
        cols.indices(["CampaignId", "ContactId", "LeadId", "Status"]);
    for i in 0..ctx.sizes.campaign_members {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "00v", 1200, i);
        let x = h(1201, i);
        row[campaign] = ctx.id("701", i % CAMPAIGN_NAMES.len());
        if x.is_multiple_of(4) {
            row[lead] = ctx.id("00Q", i * 25 + (x >> 8) as usize % 25);
        } else {
            row[contact] = ctx.id("003", i * 50 + (x >> 8) as usize % 50);
        }
        row[status] = Value::text(pick(MEMBER_STATUSES, x >> 20));
        cols.insert(store, row);
    }
}

/// Files attached to every 20th contact: call notes as text, every third
/// one a (tiny, not UTF-8) PNG. `Body` holds the bytes base64-encoded.
pub fn attachments(store: &mut Store, ctx: &Ctx) {
    use base64::Engine;
    let cols = Columns::of("Attachment");
    let audit = Audit::of(&cols);
    let [
        parent,
        name,
        private,
        content_type,
        length,
        body,
        description,
    ] = cols.indices([
        "ParentId",
        "Name",
        "IsPrivate",
        "ContentType",
        "BodyLength",
        "Body",
        "Description",
    ]);
    for i in 0..ctx.sizes.attachments {
        let mut row = cols.row();
        audit.fill(&mut row, ctx, "00P", 1100, i);
        let x = h(1101, i);
        let (file, kind, bytes) = if i % 3 == 2 {
            let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
            png.extend((x % 251) as u8..(x % 251) as u8 + 4);
            (format!("badge-{i}.png"), "image/png", png)
        } else {
            let text = format!(
                "Call notes {i}: {} renewal discussed.",
                pick(SUBJECTS, x >> 8)
            );
            (
                format!("call-notes-{i}.txt"),
                "text/plain",
                text.into_bytes(),
            )
        };
        row[parent] = ctx.id("003", i * 20);
        row[name] = Value::text(file);
        row[private] = Value::Bool(x.is_multiple_of(7));
        row[content_type] = Value::text(kind);
        row[length] = Value::Int(bytes.len() as i64);
        row[body] = Value::text(base64::engine::general_purpose::STANDARD.encode(&bytes));
        row[description] = maybe(i % 2 == 0, || Value::text("Uploaded from the sales app"));
        cols.insert(store, row);
    }
}
