//! Table tests for expression parsing and evaluation.
// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use time::macros::date;

use super::*;

/// A fixed environment: answers by name, `.` and today.
struct TestEnv {
    answers: HashMap<&'static str, Value>,
    current: Value,
}

impl Env for TestEnv {
    fn lookup(&self, name: &str) -> Value {
        self.answers
            .get(name)
            .cloned()
            .unwrap_or(Value::Str(String::new()))
    }
    fn current(&self) -> Value {
        self.current.clone()
    }
    fn today(&self) -> Date {
        date!(2024 - 06 - 15)
    }
}

fn env() -> TestEnv {
    let answers = HashMap::from([
        ("age", Value::Num(34.0)),
        ("size", Value::Num(6.0)),
        ("zero", Value::Num(0.0)),
        ("name", Value::Str("Joseph Mwangi".into())),
        ("consent", Value::Str("yes".into())),
        ("crops", Value::Str("maize  beans cassava".into())),
        ("code", Value::Str("1".into())),
        ("dob", Value::Date(date!(1990 - 01 - 01))),
        ("visit", Value::Str("2024-06-14".into())),
        ("later", Value::Str("2024-06-20".into())),
        ("start", Value::Str("2024-06-15T08:00:00+03:00".into())),
        ("word", Value::Str("abc".into())),
    ]);
    TestEnv {
        answers,
        current: Value::Str("0712345678".into()),
    }
}

/// Parses `src`, checks how it was understood, and evaluates it.
fn check(src: &str, canonical: &str, expected: Value) {
    let expr = Expr::parse(src).unwrap_or_else(|e| panic!("{src:?} should parse: {e}"));
    assert_eq!(expr.canonical(), canonical, "parse of {src:?}");
    assert_eq!(expr.source(), src);
    let got = expr.evaluate(&env());
    match (&got, &expected) {
        (Value::Num(a), Value::Num(b)) if a.is_nan() && b.is_nan() => {}
        (Value::Num(a), Value::Num(b)) if a.is_finite() && (a - b).abs() < 1e-9 => {}
        _ => assert_eq!(got, expected, "value of {src:?}"),
    }
}

fn t() -> Value {
    Value::Bool(true)
}
fn f() -> Value {
    Value::Bool(false)
}
fn n(x: f64) -> Value {
    Value::Num(x)
}

#[test]
fn literals_and_references() {
    check("42", "42", n(42.0));
    check("3.25", "3.25", n(3.25));
    check(".5", "0.5", n(0.5));
    check("'yes'", "\"yes\"", Value::Str("yes".into()));
    check("\"it's\"", "\"it's\"", Value::Str("it's".into()));
    check("${age}", "${age}", n(34.0));
    check("${missing}", "${missing}", Value::Str(String::new()));
    check(".", ".", Value::Str("0712345678".into()));
    check("today()", "today()", Value::Date(date!(2024 - 06 - 15)));
    check("${a.b-c_1}", "${a.b-c_1}", Value::Str(String::new()));
}

#[test]
fn precedence_and_associativity() {
    check("1 + 2 * 3", "(1 + (2 * 3))", n(7.0));
    check("(1 + 2) * 3", "((1 + 2) * 3)", n(9.0));
    check("10 - 4 - 3", "((10 - 4) - 3)", n(3.0));
    check("7 div 2", "(7 div 2)", n(3.5));
    check("7 mod 3", "(7 mod 3)", n(1.0));
    check("-7 mod 3", "((-7) mod 3)", n(-1.0));
    check("--2", "(-(-2))", n(2.0));
    check("-${age} + 1", "((-${age}) + 1)", n(-33.0));
    check("1 < 2 = 2 > 1", "((1 < 2) = (2 > 1))", t());
    check(
        "${age} > 1 or ${age} < 0 and 1 = 2",
        "((${age} > 1) or ((${age} < 0) and (1 = 2)))",
        t(),
    );
    check("1+2*3-4", "((1 + (2 * 3)) - 4)", n(3.0));
    check(
        "${age}>=18and${age}<=64",
        "((${age} >= 18) and (${age} <= 64))",
        t(),
    );
}

#[test]
fn arithmetic_edge_cases_follow_xpath() {
    check("1 div 0", "(1 div 0)", n(f64::INFINITY));
    check("-1 div 0", "((-1) div 0)", n(f64::NEG_INFINITY));
    check("0 div 0", "(0 div 0)", n(f64::NAN));
    check("5 mod 0", "(5 mod 0)", n(f64::NAN));
    check("${missing} + 1", "(${missing} + 1)", n(f64::NAN));
    check("'abc' * 2", "(\"abc\" * 2)", n(f64::NAN));
    check("' 12 ' + 1", "(\" 12 \" + 1)", n(13.0));
    check(
        "${size} div ${zero}",
        "(${size} div ${zero})",
        n(f64::INFINITY),
    );
    // Dates count as days since 1970-01-01 in arithmetic.
    check("today() - ${dob}", "(today() - ${dob})", n(12584.0));
    check("${dob} + 0", "(${dob} + 0)", n(7305.0));
    // Date and datetime text counts as days too.
    check("${visit} + 0", "(${visit} + 0)", n(19888.0));
    check(
        "${start} - ${visit}",
        "(${start} - ${visit})",
        n(1.0 + 5.0 / 24.0),
    );
}

#[test]
fn comparisons() {
    check("${age} = 34", "(${age} = 34)", t());
    check("${age} = '34'", "(${age} = \"34\")", t());
    check("${code} = 1", "(${code} = 1)", t());
    check("${age} != 34", "(${age} != 34)", f());
    check("${age} >= 18", "(${age} >= 18)", t());
    check("${age} < 18", "(${age} < 18)", f());
    check(
        "${age} <= 34 and ${age} > 33.9",
        "((${age} <= 34) and (${age} > 33.9))",
        t(),
    );
    // Empty or non-numeric against a number: NaN, false except `!=`.
    check("${missing} = 0", "(${missing} = 0)", f());
    check("${missing} < 1", "(${missing} < 1)", f());
    check("${missing} >= 1", "(${missing} >= 1)", f());
    check("${missing} != 0", "(${missing} != 0)", t());
    check("${word} != 3", "(${word} != 3)", t());
    // Strings.
    check("${consent} = 'yes'", "(${consent} = \"yes\")", t());
    check("${consent} != 'yes'", "(${consent} != \"yes\")", f());
    check("${missing} = ''", "(${missing} = \"\")", t());
    check("'abc' < 'abd'", "(\"abc\" < \"abd\")", t());
    check("'b' > 'abc'", "(\"b\" > \"abc\")", t());
    // Dates.
    check("${dob} < today()", "(${dob} < today())", t());
    check("${visit} <= today()", "(${visit} <= today())", t());
    check("${later} <= today()", "(${later} <= today())", f());
    check("today() = '2024-06-15'", "(today() = \"2024-06-15\")", t());
    check("${visit} < ${later}", "(${visit} < ${later})", t());
    // A datetime is later than the midnight (UTC) that starts its day.
    check("${start} >= today()", "(${start} >= today())", t());
    check("${start} < today() + 1", "(${start} < (today() + 1))", t());
    check("${start} > ${later}", "(${start} > ${later})", f());
    check("${start} >= ${visit}", "(${start} >= ${visit})", t());
    check("${missing} <= today()", "(${missing} <= today())", f());
    check("${missing} != today()", "(${missing} != today())", t());
    check("${word} = today()", "(${word} = today())", f());
    check("${word} != today()", "(${word} != today())", t());
    check("today() > 19000", "(today() > 19000)", t());
    check("${dob} < today() - 365", "(${dob} < (today() - 365))", t());
    // Booleans: = and != compare truth values.
    check("(1 = 1) = 'x'", "((1 = 1) = \"x\")", t());
    check("(1 = 2) = ''", "((1 = 2) = \"\")", t());
    check("(1 = 1) != 0", "((1 = 1) != 0)", t());
    check("(1 = 1) > 0", "((1 = 1) > 0)", t());
}

#[test]
fn boolean_logic_and_truthiness() {
    check(
        "not(${consent} = 'yes')",
        "not((${consent} = \"yes\"))",
        f(),
    );
    check("not(${missing})", "not(${missing})", t());
    check("not(${zero})", "not(${zero})", t());
    check("not(0 div 0)", "not((0 div 0))", t());
    check("not(today())", "not(today())", f());
    check("${name} and ${age}", "(${name} and ${age})", t());
    check("${missing} or ${zero}", "(${missing} or ${zero})", f());
    check("'0' and 1", "(\"0\" and 1)", t());
}

#[test]
fn functions() {
    check(
        "selected(${crops}, 'beans')",
        "selected(${crops}, \"beans\")",
        t(),
    );
    check(
        "selected(${crops}, 'bean')",
        "selected(${crops}, \"bean\")",
        f(),
    );
    check(
        "selected(${crops}, ' cassava ')",
        "selected(${crops}, \" cassava \")",
        t(),
    );
    check(
        "selected(${missing}, 'x')",
        "selected(${missing}, \"x\")",
        f(),
    );
    check("selected(${code}, 1)", "selected(${code}, 1)", t());
    check(
        "count-selected(${crops})",
        "count-selected(${crops})",
        n(3.0),
    );
    check(
        "count-selected(${missing})",
        "count-selected(${missing})",
        n(0.0),
    );
    check("string-length(${name})", "string-length(${name})", n(13.0));
    check(
        "string-length('Kĩsumu')",
        "string-length(\"Kĩsumu\")",
        n(6.0),
    );
    check("string-length(${age})", "string-length(${age})", n(2.0));
    check(
        "string-length(${missing})",
        "string-length(${missing})",
        n(0.0),
    );
    check("regex(., '0[0-9]{9}')", "regex(., \"0[0-9]{9}\")", t());
    // Anchored: a match inside the text is not enough.
    check("regex(., '[0-9]{9}')", "regex(., \"[0-9]{9}\")", f());
    check("regex(., '07.*|x')", "regex(., \"07.*|x\")", t());
    check(
        "regex(${name}, '[A-Z][a-z]+ [A-Z][a-z]+')",
        "regex(${name}, \"[A-Z][a-z]+ [A-Z][a-z]+\")",
        t(),
    );
    check("regex(${missing}, '.*')", "regex(${missing}, \".*\")", t());
    check("today( )", "today()", Value::Date(date!(2024 - 06 - 15)));
    check("string-length(.) = 10", "(string-length(.) = 10)", t());
}

#[test]
fn references_and_current() {
    let e = Expr::parse("${a} > 1 and selected(${b}, 'x') or ${a} = .").unwrap();
    assert_eq!(e.references(), vec!["a", "b", "a"]);
    assert!(e.uses_current());
    let e = Expr::parse("today() > '2020-01-01'").unwrap();
    assert!(e.references().is_empty());
    assert!(!e.uses_current());
    assert!(Expr::parse("regex(., 'a')").unwrap().uses_current());
}

/// `src` must be rejected with a message containing `fragment`.
fn reject(src: &str, fragment: &str) {
    match Expr::parse(src) {
        Ok(e) => panic!("{src:?} should be rejected, parsed as {}", e.canonical()),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(fragment),
                "{src:?}: {msg:?} lacks {fragment:?}"
            );
        }
    }
}

#[test]
fn unsupported_forms_are_rejected_with_what_is_supported() {
    reject("foo(.)", "unknown function `foo()`; supported: ${name}");
    reject("concat('a', 'b')", "unknown function `concat()`");
    reject("if(. > 1, 1, 0)", "unknown function `if()`");
    reject("true()", "unknown function `true()`");
    reject("${a} | ${b}", "unexpected `|` at column 6; supported:");
    reject("//age", "unexpected `//` at column 1");
    reject(
        "/data/age > 1",
        "paths are not supported; divide with `div`",
    );
    reject("${a} / 2", "divide with `div`");
    reject("${a}[1]", "unexpected `[` at column 5");
    reject("@id = 1", "unexpected `@`");
    reject("../age", "unexpected `..`");
    reject(
        "age > 1",
        "unexpected name `age` at column 1; refer to answers as `${age}`",
    );
    reject("${age} > 1 and", "expression ends too early");
    reject("${age} > ", "expression ends too early");
    reject("(1 + 2", "expression ends too early; expected `)`");
    reject("1 + 2)", "unexpected `)` at column 6");
    reject("1 2", "unexpected number `2` at column 3");
    reject("${age} => 1", "unexpected `>` at column 9");
    reject("${age} == 1", "unexpected `=` at column 9");
    reject("${age} <> 1", "unexpected `>` at column 9");
    reject("not ${a}", "unexpected name `not`");
    reject("not()", "`not()` takes 1 argument, got 0");
    reject("not(1, 2)", "`not()` takes 1 argument, got 2");
    reject("selected(${a})", "`selected()` takes 2 arguments, got 1");
    reject(
        "selected(${a}, 'x', 'y')",
        "`selected()` takes 2 arguments, got 3",
    );
    reject(
        "count-selected()",
        "`count-selected()` takes 1 argument, got 0",
    );
    reject(
        "string-length(${a}, 2)",
        "`string-length()` takes 1 argument, got 2",
    );
    reject("regex(.)", "`regex()` takes 2 arguments, got 1");
    reject("today(1)", "`today()` takes no arguments, got 1");
    reject("selected(${a},)", "unexpected `)`");
    reject(
        "regex(., ${pattern})",
        "the pattern of `regex()` must be a quoted string",
    );
    reject(
        "regex(., '[0-9')",
        "bad pattern in `regex()`: unclosed character class",
    );
    reject("regex(., 'a)|(b')", "bad pattern in `regex()`");
    reject("regex(., '(a')", "bad pattern in `regex()`");
    reject(
        "regex(., '\\w{1000}{1000}')",
        "bad pattern in `regex()`: the pattern is too large",
    );
    reject("'unclosed", "string starting at column 1 is not closed");
    reject("${age", "bad question reference at column 1");
    reject("${} = 1", "bad question reference");
    reject("${1a} = 1", "bad question reference");
    reject("$age", "bad question reference");
    reject("   ", "expression is empty");
    reject("1 = 1;", "unexpected `;`");
    reject("${a} = “yes”", "unexpected `“`");
    reject(",", "unexpected `,` at column 1");
}

#[test]
fn hostile_input_is_bounded() {
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    reject(&deep, "nested too deeply");
    let negs = format!("{}1", "-".repeat(500));
    reject(&negs, "nested too deeply");
    let chain = vec!["1"; 1000].join(" + ");
    reject(&chain, "nested too deeply");
    let long = "1".repeat(5000);
    reject(&long, "longer than 4096 bytes");
    // Just under the limits still parses and evaluates.
    let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
    check(&ok, "1", n(1.0));
    let ok_chain = vec!["1"; 50].join(" + ");
    assert_eq!(Expr::parse(&ok_chain).unwrap().evaluate(&env()), n(50.0));
}

#[test]
fn parse_number_follows_xpath() {
    for (text, want) in [
        ("12", 12.0),
        (" -3.5 ", -3.5),
        ("0.25", 0.25),
        (".5", 0.5),
        ("5.", 5.0),
    ] {
        assert_eq!(parse_number(text), want, "{text:?}");
    }
    for text in [
        "", " ", "-", ".", "1e3", "inf", "NaN", "+1", "1,5", "0x10", "1.2.3", "--1",
    ] {
        assert!(parse_number(text).is_nan(), "{text:?} should be NaN");
    }
}

#[test]
fn dates_parse_strictly() {
    assert_eq!(parse_date("2024-02-29"), Some(date!(2024 - 02 - 29)));
    for text in [
        "2023-02-29",
        "2024-13-01",
        "2024-1-01",
        "24-01-01",
        "2024/01/01",
        "2024-01-01T00:00",
        "",
        "２０２４-01-01",
    ] {
        assert_eq!(parse_date(text), None, "{text:?}");
    }
    assert!(parse_datetime("2024-06-15T08:00:00+03:00").is_some());
    assert!(parse_datetime("2024-06-15T08:00:00Z").is_some());
    assert!(parse_datetime("2024-06-15 08:00").is_none());
}

#[test]
fn names() {
    for ok in ["a", "_a", "head_name", "a.b", "a-b", "x1", "prénom"] {
        assert!(is_valid_name(ok), "{ok:?}");
    }
    for bad in ["", "1a", "-a", ".a", "a b", "a$", "a/b"] {
        assert!(!is_valid_name(bad), "{bad:?}");
    }
}

proptest::proptest! {
    // Keep failures in the test output rather than in files outside the fixtures.
    #![proptest_config(proptest::test_runner::Config {
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Whatever the text, parsing returns a result, and what parses evaluates, without panicking.
    #[test]
    fn arbitrary_text_never_panics(
        text in "([ ${}a-z._0-9()'\"=!<>+*,/|\\[\\]-]|and |or |div |mod |not\\(|today\\(\\)|selected\\(|regex\\(\\., '|count-selected\\(|string-length\\(|\\$\\{age\\}|\\$\\{dob\\}|\\.){0,40}"
    ) {
        if let Ok(expr) = Expr::parse(&text) {
            let _ = expr.evaluate(&env());
            let _ = expr.canonical();
        }
    }

    #[test]
    fn any_unicode_never_panics(text in "\\PC{0,60}") {
        if let Ok(expr) = Expr::parse(&text) {
            let _ = expr.evaluate(&env());
        }
    }
}
