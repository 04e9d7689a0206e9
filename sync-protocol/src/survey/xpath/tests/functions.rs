//! The ODK function library, one table per group of the spec's "XPath Functions" table:
//! string, boolean, number, select and repeat-independent node-set functions.

use super::{check, check_eval_errors, check_in, household};

/// Spec "String Functions" (XPath 1.0 §4.2 where it says "as in XPath 1.0").
#[test]
fn string_functions() {
    check(&[
        ("string(${age})", "30"),
        ("concat('a', 'b', 'c')", "abc"),
        ("concat('a')", "a"),
        ("concat('a', '', ${empty}, /data/nothing, 'b')", "ab"),
        ("concat(1, true(), 0 div 0)", "1trueNaN"),
        // Spec: node-set arguments contribute all their nodes.
        ("concat(${mname})", "BoCyDi"),
        ("concat('<', ${mname}, '>')", "<BoCyDi>"),
        ("join(', ', ${mname})", "Bo, Cy, Di"),
        ("join('-', 'a', 'b', ${vday})", "a-b-1-2-3"),
        ("join(' ')", ""),
        // substr is 0-based with an exclusive end; negative indexes count from the end.
        ("substr('abcdef', 2)", "cdef"),
        ("substr('abcdef', 1, 3)", "bc"),
        ("substr('abcdef', -2)", "ef"),
        ("substr('abcdef', 0, -1)", "abcde"),
        ("substr('abcdef', 4, 2)", ""),
        ("substr('abcdef', 10)", ""),
        ("substr('abcdef', 1.9, 3.9)", "bc"),
        ("substr('héllo', 1, 2)", "é"),
        ("substring-before('2024-03-01', '-')", "2024"),
        ("substring-before('abc', 'x')", ""),
        ("substring-before('abc', '')", ""),
        ("substring-after('2024-03-01', '-')", "03-01"),
        ("substring-after('abc', 'x')", ""),
        ("substring-after('abc', '')", "abc"),
        ("translate('bar', 'abc', 'ABC')", "BAr"),
        ("translate('--aaa--', 'abc-', 'ABC')", "AAA"),
        ("translate('ñandú', 'ñú', 'nu')", "nandu"),
        ("string-length('')", "0"),
        ("string-length('héllo')", "5"),
        ("string-length(${colors})", "15"),
        ("string-length(${nothing})", "0"),
        ("string-length(12.50)", "4"),
        ("normalize-space('  a \t b\n c  ')", "a b c"),
        ("normalize-space('')", ""),
        ("contains('abc', 'b')", "true"),
        ("contains('abc', '')", "true"),
        ("contains('abc', 'd')", "false"),
        ("starts-with('abc', 'ab')", "true"),
        ("starts-with('abc', 'b')", "false"),
        ("ends-with('abc', 'bc')", "true"),
        ("ends-with('abc', 'b')", "false"),
        ("ends-with(${name}, 'na')", "true"),
    ]);
    let inst = household();
    check_in(
        &inst,
        "/data/colors",
        &[
            ("string-length()", "15"),
            ("normalize-space()", "red blue green"),
        ],
    );
}

/// Spec "Boolean Functions".
#[test]
fn boolean_functions() {
    check(&[
        ("if(true(), 'y', 'n')", "y"),
        ("if(${age} > 18, 'adult', 'minor')", "adult"),
        ("if('', 1, 2)", "2"),
        ("if('false', 1, 2)", "1"),
        ("if(${empty}, 1, 2)", "1"),
        ("if(/data/nothing, 1, 2)", "2"),
        ("if(true(), ${mname}, 'x')", "[Bo|Cy|Di]"),
        // Only the chosen branch runs, so the other may fail.
        ("if(true(), 1, instance('nope')/x)", "1"),
        ("coalesce(${empty}, 'b')", "b"),
        ("coalesce(${name}, 'b')", "[Ana]"),
        ("coalesce('', '')", ""),
        ("coalesce(/data/nothing, 3)", "3"),
        ("coalesce(0 div 0, 3)", "3"),
        ("coalesce(0, 3)", "0"),
        ("true()", "true"),
        ("false()", "false"),
        ("boolean('false')", "true"),
        ("boolean(${mname})", "true"),
        ("boolean-from-string('true')", "true"),
        ("boolean-from-string('TRUE')", "true"),
        ("boolean-from-string('1')", "true"),
        ("boolean-from-string('yes')", "false"),
        ("boolean-from-string('false')", "false"),
        ("boolean-from-string('')", "false"),
        ("boolean-from-string(1)", "true"),
        ("not(true())", "false"),
        ("not(${nothing})", "true"),
        // regex() matches the whole value, as ODK Collect does.
        ("regex('abc', '[a-c]+')", "true"),
        ("regex('abcd', '[a-c]+')", "false"),
        ("regex('xabc', 'abc')", "false"),
        ("regex('ab', 'a|ab')", "true"),
        ("regex('', '.*')", "true"),
        ("regex(${age}, '[0-9]{2}')", "true"),
        ("regex('0712345678', '0[0-9]{9}')", "true"),
        ("regex('AB', concat('[A-Z]', '{2}'))", "true"),
        ("regex('é', '\\w')", "true"),
        ("checklist(1, 2, 'a', '', 'b')", "true"),
        ("checklist(3, -1, 'a', '', 'b')", "false"),
        ("checklist(-1, 1, 'a', 'b')", "false"),
        ("checklist(-1, -1)", "true"),
        ("checklist(2, 2, ${mage})", "true"),
        ("checklist(0, 0, ${nothing})", "true"),
        ("weighted-checklist(5, -1, 'a', 3, '', 10, 'b', 2)", "true"),
        ("weighted-checklist(6, -1, 'a', 3, '', 10, 'b', 2)", "false"),
        ("weighted-checklist(0, 4, true(), 5)", "false"),
        ("weighted-checklist(52, 52, ${mage}, ${mage})", "true"),
    ]);
    check_eval_errors(&[
        ("regex('a', concat('(', 'a'))", "`regex()`:"),
        (
            "weighted-checklist(0, 1, ${mage}, ${vday} | ${name})",
            "as many nodes",
        ),
    ]);
}

/// Spec "Number Functions" (XPath 1.0 §4.4 and XPath 3.0's math functions).
#[test]
fn number_functions() {
    check(&[
        ("number('12')", "12"),
        ("int(3.7)", "3"),
        ("int(-3.7)", "-3"),
        ("int('12.9')", "12"),
        ("int('')", "NaN"),
        ("int(1 div 0)", "Infinity"),
        ("round(2.5)", "3"),
        ("round(-2.5)", "-2"),
        ("round(-2.6)", "-3"),
        ("round(2.4999)", "2"),
        ("round(-0.4)", "0"),
        ("round(1.005, 2)", "1.01"),
        ("round(-1.005, 2)", "-1"),
        ("round(-1.0051, 2)", "-1.01"),
        ("round(3.14159, 3)", "3.142"),
        ("round(9.995, 2)", "10"),
        ("round(1234.5, -2)", "1200"),
        ("round(1250, -2)", "1300"),
        ("round(-1250, -2)", "-1200"),
        ("round(12, 40)", "NaN"),
        ("round(0 div 0)", "NaN"),
        ("round('2.5')", "3"),
        ("pow(2, 10)", "1024"),
        ("pow(2, 0.5)", "1.4142135623730951"),
        ("pow(-8, 1 div 3)", "NaN"),
        ("pow(0, 0)", "1"),
        ("log(1)", "0"),
        ("log(0)", "-Infinity"),
        ("log(-1)", "NaN"),
        ("log10(1000)", "3"),
        ("exp(0)", "1"),
        ("exp10(3)", "1000"),
        ("sqrt(16)", "4"),
        ("sqrt(-1)", "NaN"),
        ("abs(-3.5)", "3.5"),
        ("abs('')", "NaN"),
        ("sin(0)", "0"),
        ("cos(0)", "1"),
        ("tan(0)", "0"),
        ("asin(1) * 2 = pi()", "true"),
        ("acos(1)", "0"),
        ("atan(1) * 4 = pi()", "true"),
        ("atan2(1, 1) * 4 = pi()", "true"),
        ("atan2(0, -1) = pi()", "true"),
        ("pi()", "3.141592653589793"),
        ("max(1, 5, 3)", "5"),
        ("min(1, 5, 3)", "1"),
        ("max(-3, -5)", "-3"),
        ("max(1, '', 'x', 2)", "2"),
        ("max('', 'x')", "NaN"),
        ("min(${mage}, 5)", "5"),
        ("max(${mage}, ${vday})", "40"),
        ("sum(${vday}) * 2", "12"),
    ]);
}

/// Spec "Select Functions".
#[test]
fn select_functions() {
    check(&[
        ("selected('a b c', 'b')", "true"),
        ("selected('a b c', 'd')", "false"),
        ("selected('a b c', ' b ')", "true"),
        ("selected('abc', 'b')", "false"),
        ("selected('a  b', 'b')", "true"),
        ("selected('  a\tb ', 'a')", "true"),
        ("selected('a b', '')", "false"),
        ("selected('', '')", "false"),
        ("selected(${colors}, 'blue')", "true"),
        ("selected(${colors}, 'blu')", "false"),
        ("selected(${nothing}, 'a')", "false"),
        ("selected('1 2', 2)", "true"),
        ("count-selected('a b c')", "3"),
        ("count-selected(${colors})", "3"),
        ("count-selected('')", "0"),
        ("count-selected('  ')", "0"),
        ("count-selected(${nothing})", "0"),
        ("selected-at(${colors}, 0)", "red"),
        ("selected-at(${colors}, 1)", "blue"),
        ("selected-at(${colors}, 2)", "green"),
        ("selected-at(${colors}, 3)", ""),
        ("selected-at(${colors}, -1)", ""),
        ("selected-at(${colors}, '1')", "blue"),
        ("selected-at(${colors}, 1.9)", "blue"),
        ("selected-at('', 0)", ""),
        ("jr:choice-name(${country}, '${country}')", "Kenya"),
        ("jr:choice-name('ug', '${country}')", "Uganda"),
        ("jr:choice-name('ug', '/data/country')", "Uganda"),
        ("jr:choice-name('zz', '${country}')", ""),
        ("jr:choice-name(${nothing}, '${country}')", ""),
        ("jr:choice-name('ke', '${name}')", ""),
    ]);
}

/// Spec "once", "uuid", "random", "pulldata", "base64-decode".
#[test]
fn other_functions() {
    let inst = household();
    check_in(
        &inst,
        "/data/name",
        &[("once('new')", "Ana"), ("once(concat(., '!'))", "Ana")],
    );
    check_in(
        &inst,
        "/data/empty",
        &[("once('new')", "new"), ("once(1 + 1)", "2")],
    );
    check(&[
        ("pulldata('fruits', 'price', 'key', 'b')", "5"),
        ("pulldata('fruits', 'price', 'key', 'z')", ""),
        ("pulldata('fruits', 'nope', 'key', 'a')", ""),
        (
            "pulldata('countries', 'label', 'name', ${country})",
            "Kenya",
        ),
        ("pulldata('fruits', 'price', 'key', 'a') * 2", "6"),
        ("base64-decode('aMOpbGxv')", "héllo"),
        ("base64-decode('SGVsbG8=')", "Hello"),
        ("base64-decode('SGVsbG8')", "Hello"),
        ("base64-decode('')", ""),
        ("base64-decode('***')", ""),
        ("string-length(uuid())", "36"),
        ("substr(uuid(), 14, 15)", "4"),
        ("string-length(uuid(12))", "12"),
        ("uuid(0)", ""),
        ("uuid(-3)", ""),
        ("regex(uuid(20), '[0-9a-zA-Z]{20}')", "true"),
        ("uuid() = uuid()", "false"),
        ("random() >= 0 and random() < 1", "true"),
        ("random() = random()", "false"),
        ("${last-saved#name}", "Zed"),
        ("${last-saved#age}", ""),
        ("concat(${last-saved#name}, '!')", "Zed!"),
    ]);
    check_eval_errors(&[
        ("uuid(5000)", "at most 4096"),
        (
            "pulldata('nope', 'a', 'b', 'c')",
            "no secondary instance `nope`",
        ),
    ]);
}

#[test]
fn random_values_are_reproducible_from_the_seed() {
    let inst = household();
    let x = super::super::XPath::parse("concat(uuid(), ' ', random())")
        .unwrap_or_else(|e| panic!("{e}"));
    let at = |seed| {
        let mut ctx = super::context(inst.node("/data"));
        ctx.random_seed = seed;
        x.evaluate_string(&inst, &ctx)
    };
    assert_eq!(at(7), at(7));
    assert_ne!(at(7), at(8));
    let v = at(7).unwrap_or_default();
    let id = uuid::Uuid::parse_str(&v[..36]).unwrap_or_else(|e| panic!("{v}: {e}"));
    assert_eq!(id.get_version_num(), 4);
}
