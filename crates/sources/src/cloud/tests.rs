use super::*;

#[test]
fn uris_parse_and_data_buckets_confine_them() {
    let u = ObjectUri::parse("s3://churn-data/incoming/a.parquet")
        .unwrap()
        .unwrap();
    assert_eq!((u.cloud, u.bucket.as_str()), (Cloud::S3, "churn-data"));
    assert_eq!(u.key, "incoming/a.parquet");
    assert_eq!(u.to_string(), "s3://churn-data/incoming/a.parquet");
    assert!(ObjectUri::parse("file:///x").is_none());
    assert!(ObjectUri::parse("s3:///key").unwrap().is_err());
    assert!(ObjectUri::parse("gs://b/../etc").unwrap().is_err());
    let allowed =
        |list: &[&str]| u.allowed_by(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(allowed(&["s3://churn-data"]));
    assert!(allowed(&["churn-data"]));
    assert!(allowed(&["s3://churn-data/incoming/"]));
    assert!(!allowed(&["s3://churn-data/archive/"]));
    assert!(!allowed(&["gs://churn-data"]));
    assert!(
        !allowed(&["s3://churn"]),
        "a bucket name's prefix is another bucket"
    );
    assert!(!allowed(&[]));
}

#[test]
fn a_profile_section_is_read_from_ini_text() {
    let text = "[default]\naws_access_key_id = A\n[other]\naws_access_key_id=B\naws_secret_access_key = S\n";
    assert_eq!(
        ini_section(text, "other"),
        [
            ("aws_access_key_id".to_string(), "B".to_string()),
            ("aws_secret_access_key".to_string(), "S".to_string())
        ]
    );
}

#[test]
fn a_glob_lists_from_its_literal_prefix() {
    let u = ObjectUri::parse("s3://b/daily/2026-*.parquet")
        .unwrap()
        .unwrap();
    assert_eq!(u.list_prefix(), "daily/2026-");
}
