use super::*;

fn tenant() -> TenantId {
    TenantId::new("t")
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

const HUBSPOT: &str = "\u{feff}Record ID,First Name,Email,Community Tags,Last Modified Date\n\
101,Ana,ana@example.com,Pago Anual;VIP,2026-11-20 13:45\n\
102,\"Silva, Bea\",Bea@Example.com,,2026-11-21 08:00:30\n\
103,\"Line\nbreak\",carl@example.com,\"Pago Anual\",2026-11-19 10:00\n";

#[test]
fn a_hubspot_export_with_a_bom_and_quoted_fields() {
    let layout = CsvLayout::hubspot().with_tags("Community Tags", ';');
    let source = CsvSource::from_reader(&layout, HUBSPOT.as_bytes()).unwrap();
    assert!(source.issues().is_empty(), "{:?}", source.issues());
    let c = source.contacts();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].id, CrmRecordId::hubspot("101"));
    assert_eq!(
        c[0].email.as_ref().map(Email::as_str),
        Some("ana@example.com")
    );
    assert_eq!(
        c[0].tags,
        BTreeSet::from(["Pago Anual".to_owned(), "VIP".to_owned()])
    );
    assert_eq!(c[0].updated_at.to_rfc3339(), "2026-11-20T13:45:00+00:00");
    assert_eq!(c[1].properties["First Name"], "Silva, Bea");
    assert_eq!(
        c[1].email.as_ref().map(Email::as_str),
        Some("bea@example.com")
    );
    assert!(c[1].tags.is_empty());
    assert_eq!(c[2].properties["First Name"], "Line\nbreak");
    assert_eq!(c[2].tags, BTreeSet::from(["Pago Anual".to_owned()]));
}

const SALESFORCE: &str = "\"Id\",\"Email\",\"LastName\",\"Cativa_Tags__c\",\"LastModifiedDate\"\n\
\"003000000000001AAA\",\"ana@example.com\",\"Souza\",\"Pago Anual\",\"2026-11-20T13:45:10.000+0000\"\n\
\"003000000000002AAA\",\"not an email\",\"Lima\",\"\",\"2026-11-21T08:00:00.000Z\"\n\
\"003000000000003AAA\",\"c@example.com\",\"Short\"\n\
\"\",\"d@example.com\",\"NoId\",\"\",\"2026-11-21T08:00:00.000Z\"\n\
\"003000000000005AAA\",\"e@example.com\",\"BadTime\",\"\",\"yesterday\"\n\
\"003000000000001AAA\",\"again@example.com\",\"Again\",\"\",\"2026-11-22T08:00:00.000Z\"\n";

#[test]
fn a_salesforce_export_reports_bad_rows_with_their_lines() {
    let layout = CsvLayout::salesforce()
        .with_tags("Cativa_Tags__c", ';')
        .with_property("LastName");
    let source = CsvSource::from_reader(&layout, SALESFORCE.as_bytes()).unwrap();
    let c = source.contacts();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].id, CrmRecordId::salesforce("003000000000001AAA"));
    assert_eq!(c[0].updated_at.to_rfc3339(), "2026-11-20T13:45:10+00:00");
    assert_eq!(
        c[0].properties,
        BTreeMap::from([("LastName".to_owned(), "Souza".to_owned())])
    );
    assert_eq!(
        c[1].email, None,
        "an invalid email is a contact without email"
    );
    let lines: Vec<u64> = source.issues().iter().map(|i| i.line).collect();
    assert_eq!(lines, vec![4, 5, 6, 7], "{:?}", source.issues());
    assert!(
        source.issues()[0]
            .message
            .contains("3 fields where the header has 5")
    );
    assert!(source.issues()[1].message.contains("no record id"));
    assert!(source.issues()[2].message.contains("\"yesterday\""));
    assert!(source.issues()[3].message.contains("appears again"));
    assert_eq!(
        source.issues()[0].to_string().split(':').next(),
        Some("line 4")
    );
}

#[test]
fn a_missing_column_is_an_error_that_names_it() {
    let err = CsvSource::from_reader(&CsvLayout::salesforce(), "Id,Mail\n1,a@b.c\n".as_bytes())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"Email\"") && text.contains("Id, Mail"),
        "{text}"
    );
}

#[test]
fn scans_pages_and_reads_single_contacts() {
    let layout = CsvLayout::hubspot().with_tags("Community Tags", ';');
    let source = CsvSource::from_reader(&layout, HUBSPOT.as_bytes())
        .unwrap()
        .with_page_size(2);
    let t = tenant();
    let first = block(source.scan(&t, None)).unwrap();
    assert_eq!(first.contacts.len(), 2);
    let second = block(source.scan(&t, first.next.as_ref())).unwrap();
    assert_eq!((second.contacts.len(), second.next), (1, None));

    // Delta: in modification order from the cursor.
    let since = Cursor::at(parse_time("2026-11-20 00:00").unwrap());
    let changed = block(source.changed_since(&t, &since, None)).unwrap();
    let ids: Vec<&str> = changed.contacts.iter().map(|c| c.id.id.as_str()).collect();
    assert_eq!(ids, vec!["101", "102"]);

    let by_email = crate::ports::ContactRef::Email(Email::parse("BEA@example.com").unwrap());
    let found = block(source.get_contact(&t, &by_email)).unwrap().unwrap();
    assert_eq!(found.id.id, "102");
    let by_id = crate::ports::ContactRef::CrmId(CrmRecordId::hubspot("103"));
    assert!(block(source.get_contact(&t, &by_id)).unwrap().is_some());
    let other_crm = crate::ports::ContactRef::CrmId(CrmRecordId::salesforce("103"));
    assert!(block(source.get_contact(&t, &other_crm)).unwrap().is_none());
}
