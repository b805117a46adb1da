use super::*;

fn frame() -> DataFrame {
    df!(
        "x" => [Some(1i64), Some(2), Some(3), None],
        "s" => [Some("a"), Some("b"), None, Some("d")],
        "b" => [true, false, true, false],
        "my col" => [1.5, 2.5, 3.5, 4.5],
    )
    .unwrap()
}

/// The rows (by position) where `condition` holds.
fn rows(condition: &str, parser: &str) -> Vec<usize> {
    let df = frame();
    let e = parse(condition, parser, df.schema()).unwrap();
    let mask = df.lazy().select([e.alias("m")]).collect().unwrap();
    let m = mask.column("m").unwrap().bool().unwrap().clone();
    m.iter()
        .enumerate()
        .filter(|(_, v)| *v == Some(true))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn comparisons_and_boolean_operators_select_rows_as_pandas_query_does() {
    assert_eq!(rows("x == 1", "pandas"), vec![0]);
    assert_eq!(rows("x>=2 & s != \"b\"", "pandas"), vec![2]);
    assert_eq!(rows("x < 2 | s == 'd'", "pandas"), vec![0, 3]);
    // A missing x is not 1, so its negation holds (pandas).
    assert_eq!(rows("~(x == 1)", "pandas"), vec![1, 2, 3]);
    assert_eq!(rows("not x == 1 and b", "pandas"), vec![2]);
    assert_eq!(rows("2 < x", "pandas"), vec![2]);
    assert_eq!(rows("b == True", "pandas"), vec![0, 2]);
}

#[test]
fn isin_null_checks_and_quoted_names_are_read() {
    assert_eq!(rows("s.isin(['a', 'd'])", "pandas"), vec![0, 3]);
    assert_eq!(rows("x.isnull()", "pandas"), vec![3]);
    assert_eq!(rows("s.notna() & x.notnull()", "pandas"), vec![0, 1]);
    assert_eq!(rows("`my col` > 3", "pandas"), vec![2, 3]);
    assert_eq!(
        rows("col(\"x\")>1 & col(\"s\").notNull()", "great_expectations"),
        vec![1]
    );
}

#[test]
fn text_against_a_number_column_is_false_for_equality_as_in_pandas() {
    assert_eq!(rows("x == \"1\"", "pandas"), Vec::<usize>::new());
    assert_eq!(rows("x != \"1\"", "pandas"), vec![0, 1, 2, 3]);
}

#[test]
fn what_is_not_in_the_grammar_is_an_error_naming_the_condition() {
    let schema = frame().schema().clone();
    for (condition, parser, why) in [
        (
            "x == 1",
            "bad_parser",
            "condition_parser \"bad_parser\" is unknown",
        ),
        ("x + 1 == 2", "pandas", "unexpected '+'"),
        ("__import__('os')", "pandas", "is not in the dataset"),
        (
            "s.str.contains('a')",
            "pandas",
            "s.str is not supported; the methods are isin",
        ),
        ("y == 1", "pandas", "column \"y\" is not in the dataset"),
        ("x < 'a'", "pandas", "cannot order column \"x\""),
        ("(x == 1", "pandas", "expected \")\""),
        ("x == 1 x", "pandas", "unexpected x at the end"),
    ] {
        let e = parse(condition, parser, &schema).unwrap_err();
        assert_eq!(e.condition, condition);
        assert!(e.why.contains(why), "{condition}: {}", e.why);
        assert!(e.to_string().contains(condition));
    }
}
