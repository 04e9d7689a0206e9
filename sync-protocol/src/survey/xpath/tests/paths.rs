//! Location paths (spec "XPath Paths", "XPath Predicates", "XPath Axes"), `${name}`
//! resolution inside and outside repeats (pyxform), secondary instances with `current()`
//! (spec "instance", "current"), and the repeat functions (spec "indexed-repeat", "position",
//! "count", "sum").

use super::{TestInstance, check, check_eval_errors, check_in, household};

#[test]
fn absolute_relative_and_abbreviated_paths() {
    check(&[
        ("/data/name", "[Ana]"),
        ("/data/meta/instanceID", "[uuid:1]"),
        ("count(/)", "1"),
        ("count(/*)", "1"),
        ("name", "[Ana]"),
        ("./name", "[Ana]"),
        ("hh/member/mname", "[Bo|Cy|Di]"),
        ("hh/member[1]/../member[3]/mname", "[Di]"),
        ("count(hh/member/..)", "1"),
        ("count(..)", "1"),
        ("count(../..)", "0"),
        ("count(.)", "1"),
        ("count(*)", "10"),
        ("count(hh/*/mname)", "3"),
        ("/data/nothing", "[]"),
        ("/other/name", "[]"),
        ("//vday", "[1|2|3]"),
        ("count(//member)", "3"),
        ("count(/data//mname)", "3"),
        ("count(//visit/vday)", "3"),
        ("//member[2]//vday", "[3]"),
        ("count(.//*)", "26"),
        ("/data/hh/member/@missing", ""),
    ]);
}

#[test]
fn predicates_position_and_last() {
    check(&[
        ("/data/hh/member[2]/mname", "[Cy]"),
        ("/data/hh/member[position() = 2]/mname", "[Cy]"),
        ("/data/hh/member[last()]/mname", "[Di]"),
        ("/data/hh/member[position() = last() - 1]/mname", "[Cy]"),
        ("/data/hh/member[4]/mname", "[]"),
        ("/data/hh/member[0]/mname", "[]"),
        ("/data/hh/member[1.5]/mname", "[]"),
        ("/data/hh/member[mage > 20]/mname", "[Bo]"),
        ("/data/hh/member[mage != '']/mname", "[Bo|Cy]"),
        ("/data/hh/member[visit]/mname", "[Bo|Cy]"),
        ("/data/hh/member[not(visit)]/mname", "[Di]"),
        ("/data/hh/member[mage > 1][2]/mname", "[Cy]"),
        ("/data/hh/member[2][1]/mname", "[Cy]"),
        ("/data/hh/member/visit[1]/vday", "[1|3]"),
        ("/data/hh/member[count(visit) = 2]/mname", "[Bo]"),
        (
            "/data/hh/member[mname = /data/hh/member[3]/mname]/mage",
            "[]",
        ),
        ("/data/hh/member[mname = 'Di']/mage", "[]"),
        ("count(/data/hh/member[mname = 'Di']/mage)", "1"),
        ("(/data/hh/member/visit)[2]/vday", "[2]"),
        ("(/data/hh/member/visit)[last()]/vday", "[3]"),
        ("(//vday)[position() > 1]", "[2|3]"),
        ("${mname}[2]", "[Cy]"),
        ("${member}[mage = 12]/mname", "[Cy]"),
        ("/data/hh/member[mname = current()/name]", "[]"),
        ("/data/hh/member[. = .]/mname", "[Bo|Cy|Di]"),
    ]);
}

/// pyxform: `${x}` names the node in the context's own repeat instance when both are in the
/// same repeat, and every instance otherwise.
#[test]
fn references_inside_and_outside_repeats() {
    let inst = household();
    check_in(
        &inst,
        "/data",
        &[
            ("${mname}", "[Bo|Cy|Di]"),
            ("${vday}", "[1|2|3]"),
            ("${name}", "[Ana]"),
        ],
    );
    let second = "/data/hh/member[2]/mage";
    check_in(
        &inst,
        second,
        &[
            ("${mname}", "[Cy]"),
            ("${vday}", "[3]"),
            ("${name}", "[Ana]"),
            ("concat(${mname}, ' is ', ${mage})", "Cy is 12"),
            (". > 10", "true"),
            ("../mname", "[Cy]"),
            ("count(${member})", "1"),
            ("count(/data/hh/member)", "3"),
            ("position(..)", "2"),
            ("position(${member})", "2"),
            ("position()", "1"),
        ],
    );
    check_in(
        &inst,
        "/data/hh/member[1]/visit[2]/vday",
        &[
            ("${mname}", "[Bo]"),
            ("${vday}", "[2]"),
            ("position(..)", "2"),
            ("position(../..)", "1"),
            ("count(../../visit)", "2"),
            ("sum(../../visit/vday)", "3"),
            ("current()", "[2]"),
            ("current()/../../mname", "[Bo]"),
        ],
    );
    check_in(
        &inst,
        "/data/hh/member[3]",
        &[("position()", "3"), ("last()", "3")],
    );
}

#[test]
fn count_sum_and_friends_over_repeats() {
    check(&[
        ("count(${member})", "3"),
        ("count(/data/hh/member/visit)", "3"),
        ("count(${nothing_here})", "0"),
        ("count-non-empty(${mage})", "2"),
        ("count-non-empty(/data/hh/member/mname)", "3"),
        ("sum(${mage})", "52"),
        ("sum(${vday})", "6"),
        ("sum(/data/nothing)", "0"),
        ("sum(/data/hh/member/mname)", "0"),
        ("sum(${mage}) div count-non-empty(${mage})", "26"),
        ("max(${mage})", "40"),
        ("min(${mage})", "12"),
        ("max(/data/nothing)", "NaN"),
        ("count(${member}[mage > 18])", "1"),
    ]);
    check_eval_errors(&[
        ("count('a')", "`count()`: needs a node-set"),
        ("count-non-empty(3)", "needs a node-set"),
        ("sum(1)", "`sum()`: needs a node-set"),
        ("position('a')", "takes a node"),
    ]);
}

/// Spec "instance": `instance('id')/root/item[…]` reads a secondary instance; `current()` in
/// its predicate is the question being evaluated, and absolute paths still read the primary
/// instance.
#[test]
fn secondary_instances_and_current() {
    let inst = household();
    check_in(
        &inst,
        "/data/country",
        &[
            (
                "instance('countries')/root/item[name = current()]/label",
                "[Kenya]",
            ),
            (
                "instance('countries')/root/item[name = /data/country]/label",
                "[Kenya]",
            ),
            (
                "instance('countries')/root/item[name = ${country}]/label",
                "[Kenya]",
            ),
            (
                "instance('countries')/root/item[name = current()/../country]/region",
                "[east]",
            ),
            (
                "instance('countries')/root/item[region = 'east']/name",
                "[ke|ug]",
            ),
            ("count(instance('countries')/root/item)", "3"),
            (
                "count(instance('countries')/root/item[region = 'east'][2])",
                "1",
            ),
            ("instance('countries')/root/item[2]/label", "[Uganda]"),
            ("instance('countries')/root/item[last()]/label", "[Ghana]"),
            (
                "instance('countries')/root/item[position() != 1]/name",
                "[ug|gh]",
            ),
            (
                "instance('countries')/root/item[@code = 'g']/label",
                "[Ghana]",
            ),
            ("instance('countries')/root/item[2]/@code", "u"),
            ("count(instance('countries')/root/item/@code)", "3"),
            ("instance('countries')/root/item/@code = 'u'", "true"),
            ("instance('countries')//label", "[Kenya|Uganda|Ghana]"),
            (
                "instance('countries')/root/item[name = current()/name]/label",
                "[]",
            ),
            (
                "instance('countries')/root/item[name = 'ke']/label = 'Kenya'",
                "true",
            ),
            (
                "string(instance('countries')/root/item[name = 'zz']/label)",
                "",
            ),
        ],
    );
    check_eval_errors(&[("instance('nope')/root", "no secondary instance `nope`")]);
}

/// Spec "indexed-repeat": the field in the i-th instance of a repeat, nested up to 3 levels.
#[test]
fn indexed_repeat_across_nested_repeats() {
    check(&[
        ("indexed-repeat(${mname}, ${member}, 2)", "[Cy]"),
        (
            "indexed-repeat(/data/hh/member/mname, /data/hh/member, 3)",
            "[Di]",
        ),
        ("indexed-repeat(${mname}, ${member}, 4)", "[]"),
        ("indexed-repeat(${mname}, ${member}, 0)", "[Bo]"),
        ("indexed-repeat(${mname}, ${member}, ${nothing})", "[Bo]"),
        ("indexed-repeat(${vday}, ${member}, 1, ${visit}, 2)", "[2]"),
        ("indexed-repeat(${vday}, ${member}, 2, ${visit}, 1)", "[3]"),
        ("indexed-repeat(${vday}, ${member}, 2, ${visit}, 2)", "[]"),
        ("indexed-repeat(${vday}, ${member}, 3, ${visit}, 1)", "[]"),
        ("indexed-repeat(${vday}, ${member}, 1)", "[1|2]"),
        (
            "indexed-repeat(${mage}, ${member}, 1) + indexed-repeat(${mage}, ${member}, 2)",
            "52",
        ),
        (
            "indexed-repeat(${mname}, ${member}, position(${member}))",
            "[Bo]",
        ),
    ]);
    // From inside a repeat, references are still read as every instance.
    let inst = household();
    check_in(
        &inst,
        "/data/hh/member[3]/mage",
        &[
            ("indexed-repeat(${mname}, ${member}, 1)", "[Bo]"),
            (
                "indexed-repeat(${mname}, ${member}, position(..) - 1)",
                "[Cy]",
            ),
            ("indexed-repeat(../mname, /data/hh/member, 2)", "[]"),
        ],
    );
    check_eval_errors(&[
        (
            "indexed-repeat(${name}, ${member}, 1)",
            "argument 2 must be a repeat that contains the field",
        ),
        ("indexed-repeat(${mname}, ${visit}, 1)", "must be a repeat"),
        (
            "indexed-repeat(${vday}, ${member}, 1, ${name}, 1)",
            "argument 4 must be a repeat",
        ),
    ]);
}

#[test]
fn filters_need_node_sets() {
    check_eval_errors(&[
        ("(1)[1]", "needs a node-set"),
        ("('a')/b", "a path step needs a node-set"),
        ("concat('a', 'b')/c", "a path step needs a node-set"),
    ]);
    check(&[
        ("(/data/hh/member)[mname = 'Bo']/mage", "[40]"),
        ("current()/name", "[Ana]"),
    ]);
}

#[test]
fn work_is_bounded() {
    // 2,000 leaves: `//*//*//*` and nested predicates would be billions of steps.
    let mut markup = String::from("<data>");
    for i in 0..40 {
        markup.push_str("<g>");
        for j in 0..50 {
            markup.push_str(&format!("<x>{}</x>", i * 50 + j));
        }
        markup.push_str("</g>");
    }
    markup.push_str("</data>");
    let inst = TestInstance::new(&markup);
    // Steps deduplicate, so chained `//` stays linear.
    check_in(
        &inst,
        "/data",
        &[
            ("count(//x)", "2000"),
            ("sum(//x)", "1999000"),
            ("count(//*//*//*)", "2000"),
        ],
    );
    for expr in [
        "count(//x[count(//x[count(//x) > 0]) > 0])",
        "count(//x[. = //x])",
    ] {
        let got = super::eval_in(&inst, "/data", expr);
        assert_eq!(got, Err(super::super::EvalError::TooMuchWork), "{expr}");
    }
}
