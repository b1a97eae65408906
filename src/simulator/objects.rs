//! The simulated sObjects and their fields, spelled and typed as Salesforce
//! describes them.

use super::schema::FieldType::{
    Address, Base64, Boolean, Combobox, Currency, Date, DateTime, Double, Email, Id, Int, Location,
    Long, Multipicklist, Percent, Phone, Picklist, Reference, String, Textarea, Time, Url,
};
use super::schema::{FieldDef, ObjectDef};

const LEAD_SOURCES: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];

pub const LEAD_STATUSES: &[&str] = &[
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
];

/// Values of Account.WM_Tags__c (a multi-select picklist).
pub const ACCOUNT_TAGS: &[&str] = &["Partner", "Reference", "Strategic", "At Risk"];

pub const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
];

pub const ACCOUNT_TYPES: &[&str] = &[
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
];

pub const TASK_STATUSES: &[&str] = &[
    "Not Started",
    "In Progress",
    "Completed",
    "Waiting on someone else",
    "Deferred",
];

pub const CAMPAIGN_STATUSES: &[&str] = &["Planned", "In Progress", "Completed", "Aborted"];
pub const CAMPAIGN_TYPES: &[&str] = &[
    "Advertisement",
    "Email",
    "Telemarketing",
    "Banner Ads",
    "Seminar / Conference",
    "Public Relations",
    "Partners",
    "Referral Program",
    "Webinar",
    "Trade Show",
    "Direct Mail",
    "Other",
];
pub const MEMBER_STATUSES: &[&str] = &["Planned", "Sent", "Received", "Responded"];

pub fn lead_sources() -> &'static [&'static str] {
    LEAD_SOURCES
}

fn id_field(label: &'static str) -> FieldDef {
    FieldDef::new("Id", label, Id).system().required()
}

/// Audit fields every object has, plus OwnerId where Salesforce has one.
fn system_fields(owner_label: Option<&'static str>) -> Vec<FieldDef> {
    let mut fields = Vec::new();
    if let Some(label) = owner_label {
        fields.push(
            FieldDef::new("OwnerId", label, Reference)
                .refs(&["User"], "Owner")
                .required()
                .defaulted(),
        );
    }
    fields.extend([
        FieldDef::new("IsDeleted", "Deleted", Boolean).system(),
        FieldDef::new("CreatedDate", "Created Date", DateTime)
            .system()
            .required(),
        FieldDef::new("CreatedById", "Created By ID", Reference)
            .refs(&["User"], "CreatedBy")
            .system()
            .required(),
        FieldDef::new("LastModifiedDate", "Last Modified Date", DateTime)
            .system()
            .required(),
        FieldDef::new("LastModifiedById", "Last Modified By ID", Reference)
            .refs(&["User"], "LastModifiedBy")
            .system()
            .required(),
        FieldDef::new("SystemModstamp", "System Modstamp", DateTime)
            .system()
            .required(),
    ]);
    fields
}

/// A standard address compound (`BillingAddress`) and its components
/// (`BillingStreet`, ...), labelled `"{label} Street"` and so on, as
/// describe lists them.
fn address_fields(prefix: &'static str, label: &'static str) -> Vec<FieldDef> {
    // Leaked once: the schema is built once per process (see `schema()`).
    let name = |part: &str| -> &'static str { Box::leak(format!("{prefix}{part}").into()) };
    let title = |part: &str| -> &'static str { Box::leak(format!("{label} {part}").into()) };
    let compound = name("Address");
    vec![
        FieldDef::new(name("Street"), title("Street"), Textarea)
            .max_len(255)
            .part_of(compound),
        FieldDef::new(name("City"), title("City"), String)
            .max_len(40)
            .part_of(compound),
        FieldDef::new(name("State"), title("State/Province"), String)
            .max_len(80)
            .part_of(compound),
        FieldDef::new(name("PostalCode"), title("Zip/Postal Code"), String)
            .max_len(20)
            .part_of(compound),
        FieldDef::new(name("Country"), title("Country"), String)
            .max_len(80)
            .part_of(compound),
        FieldDef::new(name("Latitude"), title("Latitude"), Double)
            .number(18, 15)
            .part_of(compound),
        FieldDef::new(name("Longitude"), title("Longitude"), Double)
            .number(18, 15)
            .part_of(compound),
        FieldDef::new(compound, title("Address"), Address).calculated(),
    ]
}

fn with_system(mut fields: Vec<FieldDef>, owner_label: Option<&'static str>) -> Vec<FieldDef> {
    fields.extend(system_fields(owner_label));
    fields
}

fn account() -> ObjectDef {
    let mut fields = vec![
        id_field("Account ID"),
        FieldDef::new("Name", "Account Name", String)
            .required()
            .name_field(),
        FieldDef::new("Industry", "Industry", Picklist)
            .max_len(255)
            .values(INDUSTRIES, None),
        FieldDef::new("Type", "Account Type", Picklist)
            .max_len(255)
            .values(ACCOUNT_TYPES, None),
        FieldDef::new("AnnualRevenue", "Annual Revenue", Currency).number(18, 0),
        FieldDef::new("NumberOfEmployees", "Employees", Int).digits(8),
        FieldDef::new("Website", "Website", Url),
        FieldDef::new("Phone", "Account Phone", Phone),
    ];
    fields.extend(address_fields("Billing", "Billing"));
    fields.extend([
        FieldDef::new("WM_Tags__c", "WM Tags", Multipicklist).values(ACCOUNT_TAGS, None),
        FieldDef::new("WM_Discount__c", "WM Discount", Percent).number(5, 2),
        FieldDef::new("WM_Opens_At__c", "WM Opens At", Time),
        // A geolocation custom field: the compound and its two components.
        FieldDef::new("WM_Site__c", "WM Site", Location).calculated(),
        FieldDef::new("WM_Site__Latitude__s", "WM Site (Latitude)", Double)
            .number(9, 6)
            .part_of("WM_Site__c"),
        FieldDef::new("WM_Site__Longitude__s", "WM Site (Longitude)", Double)
            .number(9, 6)
            .part_of("WM_Site__c"),
        FieldDef::new("WM_Page_Views__c", "WM Page Views", Long),
    ]);
    ObjectDef::new(
        "Account",
        "Account",
        "Accounts",
        "001",
        with_system(fields, Some("Owner ID")),
    )
}

fn contact() -> ObjectDef {
    let mut fields = vec![
        id_field("Contact ID"),
        FieldDef::new("FirstName", "First Name", String).max_len(40),
        FieldDef::new("LastName", "Last Name", String)
            .max_len(80)
            .required(),
        FieldDef::new("Name", "Full Name", String)
            .max_len(121)
            .calculated()
            .required()
            .name_field(),
        FieldDef::new("Email", "Email", Email).id_lookup(),
        FieldDef::new("Phone", "Business Phone", Phone),
        FieldDef::new("Title", "Title", String).max_len(128),
        FieldDef::new("AccountId", "Account ID", Reference).refs(&["Account"], "Account"),
        FieldDef::new("LeadSource", "Lead Source", Picklist).values(LEAD_SOURCES, None),
        FieldDef::new("HasOptedOutOfEmail", "Email Opt Out", Boolean),
        FieldDef::new("Birthdate", "Birthdate", Date),
        FieldDef::new("WM_NPS_Score__c", "WM NPS Score", Double).number(3, 0),
        FieldDef::new("WM_Quiz_Date__c", "WM Quiz Date", Date),
        FieldDef::new("WM_Quiz_Name__c", "WM Quiz Name", String),
    ];
    fields.extend(address_fields("Mailing", "Mailing"));
    ObjectDef::new(
        "Contact",
        "Contact",
        "Contacts",
        "003",
        with_system(fields, Some("Owner ID")),
    )
}

fn lead() -> ObjectDef {
    let fields = vec![
        id_field("Lead ID"),
        FieldDef::new("FirstName", "First Name", String).max_len(40),
        FieldDef::new("LastName", "Last Name", String)
            .max_len(80)
            .required(),
        FieldDef::new("Name", "Full Name", String)
            .max_len(121)
            .calculated()
            .required()
            .name_field(),
        FieldDef::new("Company", "Company", String).required(),
        FieldDef::new("Email", "Email", Email).id_lookup(),
        FieldDef::new("Status", "Lead Status", Picklist)
            .values(LEAD_STATUSES, Some("Open - Not Contacted"))
            .restricted()
            .required(),
        FieldDef::new("LeadSource", "Lead Source", Picklist).values(LEAD_SOURCES, None),
        FieldDef::new("WalkMe_First_Login__c", "WalkMe First Login", DateTime),
        FieldDef::new("WalkMe_Last_Login__c", "WalkMe Last Login", DateTime),
        FieldDef::new(
            "WalkMe_Logins_Last_30_Days__c",
            "WalkMe Logins Last 30 Days",
            Double,
        )
        .number(18, 0),
    ];
    ObjectDef::new(
        "Lead",
        "Lead",
        "Leads",
        "00Q",
        with_system(fields, Some("Owner ID")),
    )
}

fn user() -> ObjectDef {
    let fields = vec![
        id_field("User ID"),
        FieldDef::new("Username", "Username", String)
            .max_len(80)
            .required()
            .unique()
            .id_lookup(),
        FieldDef::new("Email", "Email", Email)
            .max_len(128)
            .required(),
        FieldDef::new("FirstName", "First Name", String).max_len(40),
        FieldDef::new("LastName", "Last Name", String)
            .max_len(80)
            .required(),
        FieldDef::new("Name", "Full Name", String)
            .max_len(121)
            .calculated()
            .required()
            .name_field(),
        FieldDef::new("IsActive", "Active", Boolean),
        FieldDef::new("Title", "Title", String).max_len(80),
    ];
    let mut object = ObjectDef::new("User", "User", "Users", "005", with_system(fields, None));
    object.createable = false;
    object.deletable = false;
    object
}

fn activity_fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("WhoId", "Name ID", Reference).refs(&["Contact", "Lead"], "Who"),
        FieldDef::new("WhatId", "Related To ID", Reference).refs(&["Account", "Campaign"], "What"),
        FieldDef::new("Subject", "Subject", Combobox),
    ]
}

fn task() -> ObjectDef {
    let mut fields = vec![id_field("Activity ID")];
    fields.extend(activity_fields());
    fields.extend([
        FieldDef::new("ActivityDate", "Due Date Only", Date),
        FieldDef::new("Status", "Status", Picklist)
            .max_len(40)
            .values(TASK_STATUSES, Some("Not Started"))
            .restricted()
            .required(),
        FieldDef::new("Priority", "Priority", Picklist)
            .max_len(40)
            .values(&["High", "Normal", "Low"], Some("Normal"))
            .restricted()
            .required(),
        FieldDef::new("Description", "Description", Textarea),
        FieldDef::new("External_Activity_Id__c", "External Activity Id", String)
            .external_id()
            .unique(),
    ]);
    ObjectDef::new(
        "Task",
        "Task",
        "Tasks",
        "00T",
        with_system(fields, Some("Assigned To ID")),
    )
}

fn event() -> ObjectDef {
    let mut fields = vec![id_field("Activity ID")];
    fields.extend(activity_fields());
    fields.extend([
        FieldDef::new("StartDateTime", "Start Date Time", DateTime),
        FieldDef::new("EndDateTime", "End Date Time", DateTime),
        FieldDef::new("ActivityDateTime", "Due Date Time", DateTime),
        FieldDef::new("DurationInMinutes", "Duration", Int).digits(8),
        FieldDef::new("IsAllDayEvent", "All-Day Event", Boolean),
        FieldDef::new("Description", "Description", Textarea),
        FieldDef::new("Location", "Location", String),
        FieldDef::new("External_Activity_Id__c", "External Activity Id", String)
            .external_id()
            .unique(),
    ]);
    ObjectDef::new(
        "Event",
        "Event",
        "Events",
        "00U",
        with_system(fields, Some("Assigned To ID")),
    )
}

fn campaign() -> ObjectDef {
    let fields = vec![
        id_field("Campaign ID"),
        FieldDef::new("Name", "Campaign Name", String)
            .max_len(80)
            .required()
            .name_field(),
        FieldDef::new("Status", "Status", Picklist).values(CAMPAIGN_STATUSES, Some("Planned")),
        FieldDef::new("IsActive", "Active", Boolean),
        FieldDef::new("StartDate", "Start Date", Date),
        FieldDef::new("Type", "Type", Picklist).values(CAMPAIGN_TYPES, None),
    ];
    ObjectDef::new(
        "Campaign",
        "Campaign",
        "Campaigns",
        "701",
        with_system(fields, Some("Owner ID")),
    )
}

fn campaign_member() -> ObjectDef {
    let fields = vec![
        id_field("Campaign Member ID"),
        FieldDef::new("CampaignId", "Campaign ID", Reference)
            .refs(&["Campaign"], "Campaign")
            .required()
            .create_only(),
        FieldDef::new("ContactId", "Contact ID", Reference)
            .refs(&["Contact"], "Contact")
            .create_only(),
        FieldDef::new("LeadId", "Lead ID", Reference)
            .refs(&["Lead"], "Lead")
            .create_only(),
        FieldDef::new("Status", "Status", Picklist).values(MEMBER_STATUSES, Some("Sent")),
    ];
    ObjectDef::new(
        "CampaignMember",
        "Campaign Member",
        "Campaign Members",
        "00v",
        with_system(fields, None),
    )
}

/// A file attached to a record; `Body` is a base64 (blob) field.
fn attachment() -> ObjectDef {
    let fields = vec![
        id_field("Attachment ID"),
        FieldDef::new("ParentId", "Parent ID", Reference)
            .refs(&["Account", "Contact"], "Parent")
            .required()
            .create_only(),
        FieldDef::new("Name", "File Name", String)
            .required()
            .name_field(),
        FieldDef::new("IsPrivate", "Private", Boolean),
        FieldDef::new("ContentType", "Content Type", String).max_len(120),
        FieldDef::new("BodyLength", "Body Length", Int).system(),
        FieldDef::new("Body", "Body", Base64).required(),
        FieldDef::new("Description", "Description", Textarea).max_len(500),
    ];
    ObjectDef::new(
        "Attachment",
        "Attachment",
        "Attachments",
        "00P",
        with_system(fields, Some("Owner ID")),
    )
}

/// Every simulated object, in describeGlobal order.
pub fn all() -> Vec<ObjectDef> {
    vec![
        account(),
        attachment(),
        contact(),
        lead(),
        user(),
        task(),
        event(),
        campaign(),
        campaign_member(),
    ]
}
