use super::*;

#[test]
fn a_table_or_a_query_is_named_and_a_password_is_refused() {
    let t = PgUri::parse("postgres://alice@db:5432/crm?table=public.customers&sslmode=disable")
        .unwrap()
        .unwrap();
    assert_eq!(t.relation, Relation::Table("public.customers".into()));
    assert_eq!(t.connection, "postgres://alice@db:5432/crm?sslmode=disable");
    assert_eq!(t.select(), "SELECT * FROM \"public\".\"customers\"");
    let q = PgUri::parse("postgresql://alice@db/crm?query=SELECT%20id%2C%20age%20FROM%20c%3B")
        .unwrap()
        .unwrap();
    assert_eq!(q.relation, Relation::Query("SELECT id, age FROM c;".into()));
    assert_eq!(q.select(), "SELECT id, age FROM c");
    assert!(PgUri::parse("s3://b/k").is_none());
    for bad in [
        "postgres://alice@db/crm",
        "postgres://alice@db/crm?table=",
        "postgres://alice:secret@db/crm?table=c",
    ] {
        let e = PgUri::parse(bad).unwrap().unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}

#[test]
fn a_pgpass_line_fits_by_host_port_database_and_user_with_wildcards() {
    let text = "# comment\ndb:5432:crm:alice:first\n*:*:crm:bob:second\n*:*:*:*:fallback\n";
    let find = |w: [&str; 4]| pgpass_lookup(text, w);
    assert_eq!(
        find(["db", "5432", "crm", "alice"]).as_deref(),
        Some("first")
    );
    assert_eq!(
        find(["other", "6543", "crm", "bob"]).as_deref(),
        Some("second")
    );
    assert_eq!(
        find(["db", "5432", "hr", "alice"]).as_deref(),
        Some("fallback")
    );
    assert_eq!(
        pgpass_lookup("db:5432:crm:alice:first", ["db", "5432", "crm", "carol"]),
        None
    );
}

#[test]
fn numeric_decodes_the_binary_form() {
    // 12345.678: digits 1, 2345, 6780; weight 1; dscale 3.
    let raw = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C];
    let n = Numeric::from_sql(&Type::NUMERIC, &raw).unwrap().0;
    assert!((n - 12_345.678).abs() < 1e-9, "{n}");
    let negative = [0, 1, 0, 0, 0x40, 0, 0, 0, 0, 7];
    assert_eq!(
        Numeric::from_sql(&Type::NUMERIC, &negative).unwrap().0,
        -7.0
    );
}
