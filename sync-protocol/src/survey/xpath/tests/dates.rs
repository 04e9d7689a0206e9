//! Spec "Date and Time Functions" and the date data types ("Data Types": date, time and
//! dateTime with its offset). The tests' clock is 2024-03-15T10:30:00Z (a Friday) unless a
//! row says otherwise.

use super::super::{NodeValue, XPath};
use super::{TestInstance, check, check_eval_errors, check_in, context, household};

#[test]
fn today_now_and_date_arithmetic() {
    check(&[
        ("today()", "2024-03-15"),
        ("now()", "2024-03-15T10:30:00.000+00:00"),
        ("today() - ${dob}", "12358"),
        ("int((today() - ${dob}) div 365.25)", "33"),
        ("date('2024-03-01') - date('2024-02-01')", "29"),
        ("date('2023-03-01') - date('2023-02-01')", "28"),
        ("today() + 1", "19798"),
        ("date(today() + 1)", "2024-03-16"),
        ("today() > '2024-03-14'", "true"),
        ("today() = '2024-03-15'", "true"),
        ("today() < now()", "true"),
        ("now() - today()", "0.4375"),
        ("${dob} + 0", "7439"),
        ("boolean(today())", "true"),
        ("string-length(now())", "29"),
    ]);
}

#[test]
fn date_and_date_time_conversions() {
    check(&[
        ("date('2024-03-01')", "2024-03-01"),
        ("date(19783)", "2024-03-01"),
        ("date(19783.9)", "2024-03-01"),
        ("date(0)", "1970-01-01"),
        ("date(-1)", "1969-12-31"),
        ("date('19783')", "2024-03-01"),
        ("date('2024-03-01T23:30:00Z')", "2024-03-01"),
        ("date('2024-03-01T23:30:00-02:00')", "2024-03-02"),
        ("date(${dob})", "1990-05-15"),
        ("date('')", ""),
        ("date(${empty})", ""),
        ("date(/data/nothing)", ""),
        ("date(0 div 0)", ""),
        ("date-time(19783.5)", "2024-03-01T12:00:00.000+00:00"),
        ("date-time('2024-03-01')", "2024-03-01T00:00:00.000+00:00"),
        (
            "date-time('2024-03-01T12:00:00+02:00')",
            "2024-03-01T10:00:00.000+00:00",
        ),
        (
            "date-time('2024-03-01T12:00:00')",
            "2024-03-01T12:00:00.000+00:00",
        ),
        (
            "date-time('2024-03-01T12:00')",
            "2024-03-01T12:00:00.000+00:00",
        ),
        (
            "date-time('2024-03-01T12:00:00.5+0530')",
            "2024-03-01T06:30:00.500+00:00",
        ),
        ("decimal-date-time('1970-01-02T06:00:00Z')", "1.25"),
        ("decimal-date-time('1970-01-02T06:00:00+06:00')", "1"),
        ("decimal-date-time('2024-03-01')", "19783"),
        ("decimal-date-time(19783.25)", "19783.25"),
        ("decimal-date-time('')", ""),
        ("decimal-time('12:00:00.000')", "0.5"),
        ("decimal-time('18:00:00.000+00:00')", "0.75"),
        ("decimal-time('06:00:00.000-06:00')", "0.5"),
        ("decimal-time('2024-03-01T06:00:00Z')", "0.25"),
        ("decimal-time(19783.75)", "0.75"),
        ("decimal-time('')", ""),
        ("decimal-time('2024-03-01')", "0"),
    ]);
    check_eval_errors(&[
        ("date('soon')", "is not a date"),
        ("date('2024-02-30')", "is not a date"),
        ("date(true())", "a boolean is not a date"),
        ("date('12:00:00')", "a time has no date"),
        ("date(1 div 0)", "out of range"),
        ("date(10000000000)", "out of range"),
        ("date-time(1 div 0)", "out of range"),
        ("decimal-date-time('10:00')", "use decimal-time()"),
        ("format-date('x', '%Y')", "is not a date"),
        (
            "format-date(today(), concat('%', 'q'))",
            "unknown format code",
        ),
    ]);
}

/// Spec "format-date" and "format-date-time": every `%` code.
#[test]
fn format_date_codes() {
    check(&[
        ("format-date('2024-03-05', '%Y-%m-%d')", "2024-03-05"),
        ("format-date('2024-03-05', '%y/%n/%e')", "24/3/5"),
        ("format-date('2024-03-05', '%a %e %b %Y')", "Tue 5 Mar 2024"),
        ("format-date('2024-12-29', '%a %b')", "Sun Dec"),
        ("format-date('2024-03-05', '100%% on %d')", "100% on 05"),
        ("format-date('2024-03-05', 'no codes')", "no codes"),
        ("format-date(today(), '%d/%m/%Y')", "15/03/2024"),
        ("format-date(19783, '%Y-%m-%d')", "2024-03-01"),
        ("format-date(${dob}, '%e %b')", "15 May"),
        ("format-date('', '%Y')", ""),
        ("format-date(${empty}, '%Y')", ""),
        ("format-date('2024-03-05T14:07:09.042Z', '%H:%M')", "14:07"),
        (
            "format-date-time('2024-03-05T14:07:09.042Z', '%Y-%m-%d %H:%M:%S.%3')",
            "2024-03-05 14:07:09.042",
        ),
        (
            "format-date-time('2024-03-05T04:07:09.042+02:00', '%h:%M %H')",
            "2:07 02",
        ),
        ("format-date-time(now(), '%a %H:%M')", "Fri 10:30"),
        ("format-date-time(19783.5, '%Y-%m-%d %H')", "2024-03-01 12"),
        ("format-date-time('2024-03-05', '%H:%M:%S')", "00:00:00"),
        ("format-date-time('14:30:00.000', '%H:%M')", "14:30"),
        ("format-date-time(${start}, '%e %b %H:%M')", "15 Mar 08:00"),
    ]);
}

/// The device's zone is `now`'s offset: today() is the local date, dateTimes are shown in it.
#[test]
fn the_device_zone_is_the_offset_of_now() {
    let inst = household();
    let ctx = |now| {
        let mut c = context(inst.node("/data"));
        c.now = now;
        c
    };
    let late = ctx(time::macros::datetime!(2024-03-15 23:30:00 -05:00));
    let eval = |expr: &str, c| {
        XPath::parse(expr)
            .unwrap_or_else(|e| panic!("{e}"))
            .evaluate_string(&inst, c)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    };
    assert_eq!(eval("today()", &late), "2024-03-15");
    assert_eq!(eval("now()", &late), "2024-03-15T23:30:00.000-05:00");
    assert_eq!(
        eval("format-date-time(${start}, '%d %H:%M')", &late),
        "15 03:00"
    );
    assert_eq!(
        eval("date-time('2024-03-01T12:00:00Z')", &late),
        "2024-03-01T07:00:00.000-05:00"
    );
    assert_eq!(
        eval("decimal-time('12:00:00.000Z')", &late),
        "0.2916666666666667"
    );
    assert_eq!(eval("format-date(today() + 1, '%d')", &late), "16");
}

/// Typed node values (what a caller knows from the question type) behave like their text.
#[test]
fn typed_node_values() {
    let inst = TestInstance::new(
        "<data><n>2.50</n><d>2024-03-01</d><dt>2024-03-01T12:00:00.000+02:00</dt><t>18:00:00.000</t><e/></data>",
    )
    .typed("n", |s| NodeValue::Number(s.parse().unwrap_or(f64::NAN)))
    .typed("d", |_| NodeValue::Date(time::macros::date!(2024 - 03 - 01)))
    .typed("dt", |_| NodeValue::DateTime(time::macros::datetime!(2024-03-01 12:00:00 +02:00)))
    .typed("t", |_| NodeValue::Time(time::macros::time!(18:00), None));
    check_in(
        &inst,
        "/data",
        &[
            ("${n}", "[2.5]"),
            ("${n} * 2", "5"),
            ("${n} = '2.5'", "true"),
            ("${n} = 2.5", "true"),
            ("${d}", "[2024-03-01]"),
            ("${d} + 1", "19784"),
            ("${d} = '2024-03-01'", "true"),
            ("date(${d})", "2024-03-01"),
            ("format-date(${d}, '%b')", "Mar"),
            ("${dt}", "[2024-03-01T12:00:00.000+02:00]"),
            ("decimal-date-time(${dt})", "19783.416666666668"),
            ("format-date-time(${dt}, '%H')", "10"),
            ("${t}", "[18:00:00.000]"),
            ("decimal-time(${t})", "0.75"),
            ("${t} > '12:00:00.000'", "true"),
            ("date(${e})", ""),
            ("${e} + 1", "NaN"),
        ],
    );
}
