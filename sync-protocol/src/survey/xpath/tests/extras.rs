//! The exotic functions (spec "Geographic Functions", "digest", "base64-decode"), the public
//! conversions, and properties that must hold for any input: parsing never panics, and
//! evaluating any expression that parses never panics.

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::super::digest::{base64_decode, base64_encode, md5};
use super::super::{EvalError, Value, XPath};
use super::{TestInstance, check, check_eval_errors, context, household};

/// Spec "area", "distance": metres on ODK Collect's sphere (radius 6 378 100 m).
#[test]
fn geographic_functions() {
    let inst = TestInstance::new(
        "<data><shape>0 0 0 0; 0 1 0 0; 1 1 0 0; 1 0 0 0; 0 0 0 0</shape><trace>0 0;0 1</trace>
         <p><pt>0 0 10 5</pt></p><p><pt>0 1</pt></p><p><pt>1 1</pt></p><bad>north</bad><e/></data>",
    );
    super::check_in(
        &inst,
        "/data",
        &[
            ("round(area(${shape}))", "12390941585"),
            ("round(area('0 0; 0 1; 1 1; 1 0; 0 0'))", "12390941585"),
            ("round(distance(${shape}))", "445258"),
            ("round(distance(${trace}))", "111319"),
            ("round(distance('0 0', '0 1'))", "111319"),
            ("round(distance(${pt}))", "222638"),
            ("area(${trace})", "0"),
            ("area(${e})", "0"),
            ("distance(${e})", "0"),
            ("distance('0 0')", "0"),
            ("round(area(${pt}))", "6195942628"),
        ],
    );
    for expr in [
        "area(${bad})",
        "distance('91 0; 0 0')",
        "distance('0 181; 0 0')",
        "distance('0', '1')",
    ] {
        let got = super::eval_in(&inst, "/data", expr);
        assert!(
            matches!(got, Err(EvalError::Function { .. })),
            "{expr}: {got:?}"
        );
    }
}

/// Spec "digest" (XForms 1.1): base64 by default, or hex; FIPS 180 and RFC 1321 vectors.
#[test]
fn digests() {
    check(&[
        (
            "digest('abc', 'MD5', 'hex')",
            "900150983cd24fb0d6963f7d28e17f72",
        ),
        ("digest('abc', 'MD5')", "kAFQmDzST7DWlj99KOF/cg=="),
        (
            "digest('', 'md5', 'HEX')",
            "d41d8cd98f00b204e9800998ecf8427e",
        ),
        (
            "digest('abc', 'SHA-1', 'hex')",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (
            "digest('abc', 'SHA-256', 'hex')",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            "digest('abc', 'sha256')",
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
        ),
        (
            "digest('abc', 'SHA-384', 'hex')",
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            "digest('abc', 'SHA-512', 'hex')",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        ("string-length(digest(${name}, 'SHA-256'))", "44"),
    ]);
    check_eval_errors(&[(
        "digest('a', concat('SHA', '-3'))",
        "unknown digest algorithm",
    )]);
}

#[test]
fn md5_matches_rfc_1321() {
    let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let rows = [
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "c3fcd3d76192e4007dfb496cca67e13b",
        ),
        (
            "The quick brown fox jumps over the lazy dog",
            "9e107d9d372bb6826bd81d3542a419d6",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (input, expected) in rows {
        assert_eq!(hex(md5(input.as_bytes())), expected, "{input}");
    }
    // Lengths around the 56-byte padding boundary.
    for n in 54..=66 {
        let _ = md5(&vec![b'x'; n]);
    }
    assert_eq!(hex(md5(&[b'a'; 64])), "014842d480b571495a4a0363793f7367");
}

#[test]
fn base64_round_trips() {
    for n in 0..20 {
        let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
        let text = base64_encode(&bytes);
        assert_eq!(text.len() % 4, 0);
        assert_eq!(base64_decode(&text), Some(bytes));
    }
    assert_eq!(base64_decode("Zg=a"), None);
    assert_eq!(base64_decode("Z"), None);
}

#[test]
fn public_conversions() {
    let inst = household();
    let ctx = context(inst.node("/data"));
    let x = |s: &str| XPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(x("${age} > 18").evaluate_bool(&inst, &ctx), Ok(true));
    assert_eq!(x("${name}").evaluate_bool(&inst, &ctx), Ok(true));
    assert_eq!(x("${nothing}").evaluate_bool(&inst, &ctx), Ok(false));
    assert_eq!(
        x("${mname}").evaluate_string(&inst, &ctx).as_deref(),
        Ok("Bo")
    );
    assert_eq!(x("${age}").evaluate_number(&inst, &ctx), Ok(30.0));
    assert!(
        x("${empty}")
            .evaluate_number(&inst, &ctx)
            .is_ok_and(f64::is_nan)
    );
    assert_eq!(
        x("1 div 0").evaluate_string(&inst, &ctx).as_deref(),
        Ok("Infinity")
    );
    assert_eq!(x("1 = 1").evaluate(&inst, &ctx), Ok(Value::Boolean(true)));
    assert_eq!(
        x("'a'").evaluate(&inst, &ctx),
        Ok(Value::String("a".into()))
    );
    assert_eq!(x("3").evaluate(&inst, &ctx), Ok(Value::Number(3.0)));
    let members = x("${member}").evaluate(&inst, &ctx);
    assert!(
        matches!(members, Ok(Value::Nodes(ref ns)) if ns.len() == 3),
        "{members:?}"
    );
    assert_eq!(x("string(${age})").evaluate_number(&inst, &ctx), Ok(30.0));
    let err = XPath::parse("foo(1)").map(|_| ()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("column 1: unknown function `foo()`;"),
        "{err}"
    );
}

/// Expressions built from the grammar (so most parse and reach the evaluator), with a
/// sprinkling of raw tokens so that near-misses are tried too.
fn fragment() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "${name}",
        "${age}",
        "${mname}",
        "${member}",
        "${vday}",
        "${nothing}",
        "${colors}",
        "${last-saved#name}",
        "/data",
        "/",
        "//vday",
        "hh/member",
        "..",
        ".",
        "*",
        "@code",
        "1",
        "0",
        "2.5",
        "-1",
        "'a b'",
        "''",
        "'2024-03-01'",
        "'%Y %b'",
        "'[a-z]+'",
        "'SHA-256'",
        "'0 0; 0 1; 1 1'",
        "instance('countries')/root/item",
        "current()",
        "position()",
        "last()",
        "today()",
        "now()",
        "random()",
        "uuid()",
        "true()",
        "1 div 0",
        ")",
        "[",
        ",",
    ])
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 48, 3, |inner| {
        let op = prop::sample::select(vec![
            "+", "-", "*", "div", "mod", "=", "!=", "<", ">=", "and", "or", "|", "/",
        ]);
        let func = prop::sample::select(vec![
            "count",
            "sum",
            "concat",
            "if",
            "coalesce",
            "selected",
            "selected-at",
            "count-selected",
            "indexed-repeat",
            "substr",
            "regex",
            "format-date",
            "format-date-time",
            "date",
            "date-time",
            "decimal-time",
            "decimal-date-time",
            "round",
            "max",
            "min",
            "pow",
            "int",
            "uuid",
            "once",
            "jr:choice-name",
            "digest",
            "area",
            "distance",
            "join",
            "base64-decode",
            "checklist",
            "weighted-checklist",
            "translate",
            "not",
            "string-length",
            "normalize-space",
            "boolean-from-string",
            "number",
            "string",
            "position",
            "contains",
            "substring-after",
            "log",
            "sqrt",
            "pulldata",
        ]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            (func, prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(a, p)| format!("({a})[{p}]")),
            inner
                .clone()
                .prop_map(|a| format!("instance('countries')/root/item[{a}]/name")),
            inner.prop_map(|a| format!("-({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let _ = XPath::parse(&text);
    }

    #[test]
    fn evaluating_whatever_parses_never_panics(text in fragment(), at in 0usize..4) {
        let inst = household();
        let contexts = ["/data", "/data/hh/member[2]/mage", "/data/hh/member[1]/visit[2]", "/data/country"];
        if let Ok(x) = XPath::parse(&text) {
            let _ = x.evaluate(&inst, &context(inst.node(contexts[at])));
            let _ = x.references();
            let _ = x.uses_context();
        }
    }
}

#[test]
fn some_random_fragments_do_parse() {
    // Guards the property above against a generator that never yields a valid expression.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut parsed = 0;
    for _ in 0..300 {
        let text = fragment()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        parsed += usize::from(XPath::parse(&text).is_ok());
    }
    assert!(parsed > 20, "only {parsed} of 300 parsed");
}
