//! Operators and conversions: XPath 1.0 §3.4 (booleans, equality and relational comparisons,
//! node-sets compared existentially), §3.5 (numbers, IEEE 754 arithmetic), §4.2–4.4 (string(),
//! number(), boolean()), with the ODK spec's extension of number() to dates ("XPath
//! Operators", "number").

use super::check;

#[test]
fn arithmetic_and_precedence() {
    check(&[
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),
        ("2 * 3 div 4", "1.5"),
        ("7 mod 3", "1"),
        ("-7 mod 3", "-1"),
        ("7 mod -3", "1"),
        ("5.5 mod 2", "1.5"),
        ("1 mod 0", "NaN"),
        ("1 div 0", "Infinity"),
        ("-1 div 0", "-Infinity"),
        ("0 div 0", "NaN"),
        ("- 2 + 3", "1"),
        ("--2", "2"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("1 div 3", "0.3333333333333333"),
        (
            "1000000 * 1000000 * 1000000 * 1000000",
            "1000000000000000000000000",
        ),
        ("1 div 1000000000", "0.000000001"),
        ("-0", "0"),
        ("3.0", "3"),
        ("1 < 2 = true()", "true"),
        ("1 + 1 = 2 and 2 > 1 or 0", "true"),
        ("1 = 1 or 1 div 0", "true"),
        ("0 and 1 div 0", "false"),
    ]);
}

#[test]
fn arithmetic_converts_operands_to_numbers() {
    check(&[
        ("'2' + '3'", "5"),
        ("' 2 ' * 2", "4"),
        ("'' + 1", "NaN"),
        ("'abc' + 1", "NaN"),
        ("'1e3' + 0", "NaN"),
        ("'+1' + 0", "NaN"),
        ("'1,5' + 0", "NaN"),
        ("true() + true()", "2"),
        ("${age} + 1", "31"),
        ("${empty} + 1", "NaN"),
        ("${name} + 1", "NaN"),
        ("/data/nothing + 1", "NaN"),
        ("${mage} * 2", "80"),
        ("'-.5' * 2", "-1"),
    ]);
}

/// §3.4 for two values that are not node-sets: `=`/`!=` compare as booleans if either is
/// one, else as numbers if either is one, else as strings; `<` and friends always as numbers.
#[test]
fn comparisons_of_values() {
    check(&[
        ("'1' = 1", "true"),
        ("'1.0' = 1", "true"),
        ("'1.0' = '1'", "false"),
        ("'abc' = 'abc'", "true"),
        ("'abc' != 'abd'", "true"),
        ("'a' < 'b'", "false"),
        ("'2' < '10'", "true"),
        ("1 = true()", "true"),
        ("2 = true()", "true"),
        ("0 = false()", "true"),
        ("'false' = true()", "true"),
        ("'' = false()", "true"),
        ("true() > false()", "true"),
        ("0 div 0 = 0 div 0", "false"),
        ("0 div 0 != 0 div 0", "true"),
        ("0 div 0 < 1", "false"),
        ("0 div 0 >= 1", "false"),
        ("'x' != 1", "true"),
        ("1 div 0 > 1000000", "true"),
        ("-1 div 0 < -1000000", "true"),
    ]);
}

/// §3.4 with node-sets: true if some node's string-value (or number, against a number)
/// compares true; against a boolean, the node-set's boolean() is compared.
#[test]
fn comparisons_with_node_sets_are_existential() {
    check(&[
        ("/data/hh/member/mname = 'Cy'", "true"),
        ("/data/hh/member/mname != 'Cy'", "true"),
        ("/data/hh/member/mname = 'Zed'", "false"),
        ("/data/hh/member/mage > 30", "true"),
        ("/data/hh/member/mage < 20", "true"),
        ("/data/hh/member/mage > 100", "false"),
        ("/data/hh/member/mage = 12", "true"),
        ("12 = /data/hh/member/mage", "true"),
        ("30 < /data/hh/member/mage", "true"),
        ("/data/hh/member/mage = ''", "true"),
        ("/data/nothing = ''", "false"),
        ("/data/nothing != ''", "false"),
        ("/data/nothing = /data/nothing", "false"),
        ("/data/nothing = false()", "true"),
        ("/data/empty = false()", "false"),
        ("/data/empty = ''", "true"),
        (
            "/data/hh/member/mname = /data/name | /data/hh/member[2]/mname",
            "true",
        ),
        ("/data/hh/member/mage = /data/age", "false"),
        ("/data/hh/member/mage > /data/age", "true"),
        ("/data/hh/member/mage < /data/zero", "false"),
        ("${age} = '30'", "true"),
        ("${age} = 30.0", "true"),
        ("${age} = '30.0'", "false"),
        ("${zero} = false()", "false"),
        ("instance('countries')/root/item/name = ${country}", "true"),
    ]);
}

#[test]
fn conversions_follow_xpath() {
    check(&[
        // string()
        ("string(1)", "1"),
        ("string(-1.5)", "-1.5"),
        ("string(1 div 0)", "Infinity"),
        ("string(-1 div 0)", "-Infinity"),
        ("string(0 div 0)", "NaN"),
        ("string(true())", "true"),
        ("string(/data/hh/member/mname)", "Bo"),
        ("string(/data/nothing)", ""),
        ("string(12345678901234567890)", "12345678901234567000"),
        // number()
        ("number('')", "NaN"),
        ("number('  42 ')", "42"),
        ("number('4 2')", "NaN"),
        ("number('-3.25')", "-3.25"),
        ("number('.5')", "0.5"),
        ("number('5.')", "5"),
        ("number(true())", "1"),
        ("number(false())", "0"),
        ("number(/data/nothing)", "NaN"),
        ("number(${empty})", "NaN"),
        ("number('Infinity')", "NaN"),
        ("number('NaN')", "NaN"),
        ("number('0x10')", "NaN"),
        // boolean()
        ("boolean('false')", "true"),
        ("boolean('')", "false"),
        ("boolean(' ')", "true"),
        ("boolean(0)", "false"),
        ("boolean(-0)", "false"),
        ("boolean(0 div 0)", "false"),
        ("boolean(0.0001)", "true"),
        ("boolean(/data/nothing)", "false"),
        ("boolean(/data/empty)", "true"),
        ("boolean(${zero})", "true"),
        ("not(${zero})", "false"),
        ("not('')", "true"),
    ]);
}

/// Spec "number": date and dateTime strings convert to days since 1970-01-01 (UTC), so dates
/// can be subtracted and compared.
#[test]
fn dates_convert_to_days() {
    check(&[
        ("number('1970-01-02')", "1"),
        ("number('1969-12-31')", "-1"),
        ("number('2024-03-01')", "19783"),
        ("number('1970-01-01T12:00:00Z')", "0.5"),
        (
            "number('1970-01-02T00:00:00.000+02:00')",
            "0.9166666666666666",
        ),
        ("number('1970-01-01T06:00:00')", "0.25"),
        ("number('2024-02-30')", "NaN"),
        ("number('2024-3-1')", "NaN"),
        ("number('12:00:00')", "0.5"),
        ("'2024-03-01' - '2024-02-01'", "29"),
        ("'2024-03-01' > '2024-02-29'", "true"),
        ("'2024-03-01' = '2024-03-01'", "true"),
        ("'2024-06-15T08:00:00Z' > '2024-06-15'", "true"),
        ("${dob} < '2000-01-01'", "true"),
        ("${start} < now()", "true"),
        ("${start} + 1 > now()", "true"),
    ]);
}

#[test]
fn unions() {
    check(&[
        ("count(/data/name | /data/age)", "2"),
        ("count(/data/name | /data/name)", "1"),
        ("/data/age | /data/name", "[Ana|30]"),
        ("count(/data/hh/member | /data/hh/member/visit)", "6"),
        ("count(/data/nothing | /data/name)", "1"),
        ("count((/data/name | /data/age)[2])", "1"),
        ("(/data/age | /data/name)[1]", "[Ana]"),
        ("count(${mname} | ${vday})", "6"),
    ]);
    super::check_eval_errors(&[("1 | /data/name", "`|` joins node-sets")]);
}
