//! The org's API request limit used up (403 REQUEST_LIMIT_EXCEEDED) is
//! SQLSTATE 53400 with advice, for a SELECT and for a dry run alike, and
//! the server goes on answering.

use crate::common::{error_of, fail_next, rows, start_demo};

const NPS_DRY_RUN: &str = "UPDATE sandbox.contact SET wm_nps_score__c = r.nps_score \
    FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)";

fn assert_limit_error((code, message): (String, String)) {
    assert_eq!(code, "53400", "{message}");
    assert!(
        message.starts_with("connection sandbox: Salesforce answered 403 REQUEST_LIMIT_EXCEEDED"),
        "{message}"
    );
    assert!(
        message.contains("API request limit is used up"),
        "{message}"
    );
    assert!(!message.contains("External error"), "{message}");
}

#[tokio::test]
async fn a_used_up_request_limit_is_53400_and_the_server_stays_up() {
    let demo = start_demo(50, &[]).await;
    let client = demo.connect().await;
    let select = "SELECT id, email FROM sandbox.contact WHERE email LIKE 'a%'";
    rows(&client, select).await;

    fail_next(&demo, "sandbox", 403, 1, "REQUEST_LIMIT_EXCEEDED").await;
    assert_limit_error(error_of(&client, select).await);

    rows(&client, "SET sfsql.dry_run = on").await;
    fail_next(&demo, "sandbox", 403, 1, "REQUEST_LIMIT_EXCEEDED").await;
    assert_limit_error(error_of(&client, NPS_DRY_RUN).await);

    // Same connection, same statements, once Salesforce answers again.
    assert!(!rows(&client, select).await.is_empty());
    assert!(!rows(&client, NPS_DRY_RUN).await.is_empty());
}
