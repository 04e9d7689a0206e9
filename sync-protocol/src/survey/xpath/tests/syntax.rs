//! Parsing: errors with columns, the static facts callers read (references, functions,
//! instances, context use), smart quotes, and XPath 1.0's lexical disambiguation (§3.7).

use super::super::{Reference, XPath, XPathErrorKind};
use super::check;

fn parse_err(text: &str) -> (usize, String) {
    match XPath::parse(text) {
        Ok(x) => panic!("{text:?} parsed as {x:?}"),
        Err(e) => (e.column, e.to_string()),
    }
}

#[test]
fn syntax_errors_say_where_and_what_to_do() {
    let rows: &[(&str, usize, &str)] = &[
        ("", 1, "expression is empty"),
        ("   ", 1, "expression is empty"),
        ("1 +", 3, "ends too early"),
        ("(1", 2, "expected `)`"),
        ("1 2", 3, "expected an operator"),
        ("'abc", 1, "add the closing '"),
        ("\"abc", 1, "add the closing \""),
        ("${}", 1, "bad question reference"),
        ("${a b}", 1, "bad question reference"),
        ("${1a}", 1, "bad question reference"),
        ("${a", 1, "bad question reference"),
        ("$x + 1", 1, "variables like `$x` are not supported"),
        ("child::a", 1, "axis `child::` is not supported"),
        ("1 # 2", 3, "unexpected `#`"),
        ("foo(1)", 1, "unknown function `foo()`"),
        ("substring('abc', 1)", 1, "use `substr(value, start, end)`"),
        ("lower-case('A')", 1, "ODK has no case conversion"),
        ("jr:itext('x')", 1, "not supported"),
        ("if(1, 2)", 1, "`if()` takes 3 arguments, not 2"),
        ("today(1)", 1, "`today()` takes no arguments, not 1"),
        ("concat()", 1, "at least 1 argument"),
        ("substr('a')", 1, "2 or 3 arguments"),
        ("indexed-repeat(${a}, ${b})", 1, "3, 5 or 7 arguments"),
        ("weighted-checklist(1, 2, 3)", 1, "an even number"),
        ("regex(., '[a-')", 10, "bad pattern in `regex()`"),
        ("regex(., '(a')", 10, "bad pattern"),
        ("regex(., 'a)|(b')", 10, "bad pattern"),
        ("regex(., '(?<=a)b')", 10, "bad pattern"),
        ("format-date(today(), '%Q')", 22, "unknown format code `%Q`"),
        ("format-date(today(), '100%')", 22, "ends with `%`"),
        ("digest('a', 'SHA-3')", 13, "unknown digest algorithm"),
        ("digest('a', 'MD5', 'b32')", 20, "unknown digest encoding"),
        ("instance(${x})/root", 10, "must be a quoted string"),
        (
            "pulldata(${x}, 'a', 'b', 'c')",
            10,
            "must be a quoted string",
        ),
        (
            "indexed-repeat('a', ${r}, 1)",
            16,
            "must be ${name}s or paths",
        ),
        ("a/@b/c", 6, "make it the last step"),
        ("a/@b[1]", 3, "make it the last step"),
        ("${last-saved#a}[1]", 16, "is a value, not a node-set"),
        ("./[1]", 3, "expected a step"),
        ("a//", 2, "expected a step"),
        ("1 = = 2", 5, "expected a value"),
        ("]", 1, "expected a value"),
    ];
    for (text, column, part) in rows {
        let (got_column, msg) = parse_err(text);
        assert!(msg.contains(part), "{text:?}: {msg}");
        assert_eq!(got_column, *column, "{text:?}: {msg}");
    }
}

#[test]
fn limits_on_length_and_depth() {
    let long = format!("'{}'", "a".repeat(4095));
    assert_eq!(
        XPath::parse(&long).map(|_| ()).map_err(|e| e.kind),
        Err(XPathErrorKind::TooLong)
    );
    let deep = format!("{}1{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(
        XPath::parse(&deep).map(|_| ()).map_err(|e| e.kind),
        Err(XPathErrorKind::TooDeep)
    );
    let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
    assert!(XPath::parse(&ok).is_ok());
    let chain = vec!["1"; 70].join(" + ");
    assert_eq!(
        XPath::parse(&chain).map(|_| ()).map_err(|e| e.kind),
        Err(XPathErrorKind::TooDeep)
    );
    let minus = format!("{}1", "-".repeat(100));
    assert_eq!(
        XPath::parse(&minus).map(|_| ()).map_err(|e| e.kind),
        Err(XPathErrorKind::TooDeep)
    );
}

#[test]
fn references_in_order_with_columns_also_inside_literals() {
    let x = XPath::parse("jr:choice-name(${q}, '${q}') = ${last-saved#name} or ${a.b-c}")
        .unwrap_or_else(|e| panic!("{e}"));
    let refs = x.references();
    let r = |name: &str, column, last_saved| Reference {
        name: name.to_owned(),
        column,
        last_saved,
    };
    assert_eq!(
        refs,
        vec![
            r("q", 16, false),
            r("q", 23, false),
            r("name", 32, true),
            r("a.b-c", 54, false)
        ]
    );
    let plain = XPath::parse("concat('cost: ${5}', 'x')").unwrap_or_else(|e| panic!("{e}"));
    assert!(plain.references().is_empty(), "not a name, so only text");
}

#[test]
fn functions_instances_and_context_use() {
    let x = XPath::parse(
        "count(instance('countries')/root/item[name = current()/../country]) + \
         string-length(pulldata('fruits', 'price', 'key', 'a')) + count(instance('countries')/root/item)",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        x.functions(),
        ["count", "instance", "current", "string-length", "pulldata"]
    );
    assert_eq!(x.instances(), ["countries", "fruits"]);
    assert!(x.uses_context(), "current()");

    let rows: &[(&str, bool)] = &[
        (". > 3", true),
        ("../x", true),
        ("x", true),
        ("string-length() < 5", true),
        ("position() = 1", true),
        ("once(random())", true),
        ("${x} > 3", false),
        ("/data/x > 3", false),
        ("instance('l')/root/item[name = 'a']/label", false),
        ("count(${r}[position() = 1])", false),
        ("/data/r[. > 1]", false),
        ("jr:choice-name(${q}, '${q}')", false),
    ];
    for (text, expected) in rows {
        let x = XPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(x.uses_context(), *expected, "{text}");
    }
}

#[test]
fn smart_quotes_are_plain_quotes() {
    let x = XPath::parse("concat(\u{2018}a\u{2019}, \u{201C}b\u{201D})")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(x.source(), "concat('a', \"b\")");
    check(&[("concat(\u{2018}it\u{2019}, \u{201C}'s\u{201D})", "it's")]);
}

/// XPath 1.0 §3.7: after an operand, `*` multiplies and `and`/`or`/`div`/`mod` are
/// operators; elsewhere they are a name test and element names.
#[test]
fn lexical_disambiguation() {
    let inst = super::TestInstance::new(
        "<data><div>6</div><mod>4</mod><and>1</and><or/><n-1>5</n-1><a.b>7</a.b></data>",
    );
    super::check_in(
        &inst,
        "/data",
        &[
            ("div div mod", "1.5"),
            ("mod * 2", "8"),
            ("count(*)", "6"),
            ("count(/data/*)", "6"),
            ("2*3", "6"),
            ("and and and", "true"),
            ("n-1", "[5]"),
            ("n-1 - 1", "4"),
            ("a.b", "[7]"),
            ("2 -1", "1"),
            ("2--1", "3"),
            (".5 + 1.", "1.5"),
        ],
    );
}

#[test]
fn display_and_source_are_the_text() {
    let x = XPath::parse(" ${a}  + 1 ").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(x.to_string(), " ${a}  + 1 ");
    assert_eq!(x.source(), " ${a}  + 1 ");
}
