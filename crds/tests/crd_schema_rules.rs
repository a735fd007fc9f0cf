//! The generated CRDs must be ones a real API server accepts.
//!
//! A Kubernetes API server refuses a CRD when the estimated cost of a CEL rule, times the number
//! of times the rule can run in one object, exceeds 10,000,000 (`StaticEstimatedCostLimit`), or
//! when the rules of one CRD add up to more than 100,000,000 (`StaticEstimatedCRDCostLimit`).
//! It estimates from the schema: a string without `maxLength`, a list without `maxItems` or a
//! map without `maxProperties` counts as large as a whole request (about 3 MiB), which is what
//! made two of the three CRDs fail to install. So this test:
//! - fails on any string, list or map that a rule reaches without a bound, and on any list or map
//!   around a rule without one (the rule could run without limit);
//! - estimates each rule's cost with the factors of cel-go's checker (traversing a string costs
//!   0.1 a character, a regex match the string's traversal times 0.25 a pattern character, a
//!   comprehension its body once per element) and asserts a tenfold margin under both limits,
//!   since this estimate is close to, but not, the server's own;
//! - fails on formats the API server does not know (it warns `unrecognized format` on every
//!   apply and ignores them).
//!
//! The estimator knows the functions the rules use; a rule calling another fails here until the
//! estimator learns its cost, so a new rule cannot slip past the check.

use std::collections::BTreeMap;

use cel_parser::{
    Parser,
    ast::{ComprehensionExpr, Expr, IdedExpr},
    reference::Val,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use vigil_crds::schema::format_is_known;

/// The API server's per-rule limit, `StaticEstimatedCostLimit`.
const RULE_LIMIT: f64 = 10_000_000.0;
/// The API server's per-CRD limit, `StaticEstimatedCRDCostLimit`.
const CRD_LIMIT: f64 = 100_000_000.0;
/// How far under the limits the estimate must stay.
const MARGIN: f64 = 10.0;
/// Characters of the API server's own `metadata.name` and `metadata.generateName`.
const METADATA_NAME: u64 = 253;

#[derive(Default)]
struct Report {
    problems: Vec<String>,
    /// (path, rule, cost of one evaluation, how often it can run)
    rules: Vec<(String, String, f64, u64)>,
}

/// What an expression evaluates to, as far as cost goes.
#[derive(Clone, Copy)]
enum Value<'s> {
    /// A value described by a schema node.
    Schema(&'s JSONSchemaProps),
    /// The root's `metadata`, which the API server declares itself.
    RootMetadata,
    /// A key of a map (keys cannot be bounded in a CRD schema).
    MapKey,
    /// A string literal of this many characters.
    Literal(u64),
    /// Anything whose size does not matter (booleans, numbers, accumulators).
    Scalar,
}

struct Estimator<'s, 'r> {
    path: &'r str,
    /// Whether `self` is the object's root, whose `metadata` the API server declares itself.
    at_root: bool,
    report: &'r mut Report,
    vars: BTreeMap<String, Value<'s>>,
}

impl<'s> Estimator<'s, '_> {
    fn problem(&mut self, what: String) {
        self.report.problems.push(format!("{}: {what}", self.path));
    }

    /// Records a problem when a value the rule reaches has no size bound.
    fn reached(&mut self, value: Value<'s>, what: &str) {
        let Value::Schema(schema) = value else {
            return;
        };
        let ty = schema.type_.as_deref();
        let unbounded = match ty {
            Some("string") => schema.max_length.is_none() && schema.enum_.is_none(),
            Some("array") => schema.max_items.is_none(),
            Some("object") => {
                schema.additional_properties.is_some() && schema.max_properties.is_none()
            }
            _ => false,
        };
        if unbounded {
            let ty = ty.unwrap_or("value");
            self.problem(format!(
                "the rule reaches {what} ({ty}), which has no bound"
            ));
        }
    }

    /// Largest size of a string or collection value, for traversal costs.
    fn size(&mut self, value: Value<'s>, what: &str) -> u64 {
        match value {
            Value::Schema(schema) => {
                self.reached(value, what);
                let bound = match schema.type_.as_deref() {
                    Some("string") => schema.max_length.or_else(|| {
                        schema.enum_.as_ref().map(|values| {
                            values
                                .iter()
                                .filter_map(|v| v.0.as_str().map(|s| s.len() as i64))
                                .max()
                                .unwrap_or(0)
                        })
                    }),
                    Some("array") => schema.max_items,
                    Some("object") => schema.max_properties,
                    _ => Some(1),
                };
                bound.unwrap_or(3 * 1024 * 1024).max(0) as u64
            }
            Value::MapKey => {
                self.problem(format!(
                    "the rule traverses {what}, a map key, which cannot be bounded"
                ));
                3 * 1024 * 1024
            }
            Value::Literal(len) => len,
            Value::RootMetadata | Value::Scalar => 1,
        }
    }

    fn estimate(&mut self, expr: &'s IdedExpr) -> (f64, Value<'s>) {
        match &expr.expr {
            Expr::Literal(Val::String(s)) => (0.0, Value::Literal(s.chars().count() as u64)),
            Expr::Literal(_) => (0.0, Value::Scalar),
            Expr::Ident(name) => match self.vars.get(name) {
                Some(value) => {
                    let value = *value;
                    self.reached(value, name);
                    (1.0, value)
                }
                None => {
                    self.problem(format!("unknown identifier {name}"));
                    (1.0, Value::Scalar)
                }
            },
            Expr::Select(select) => {
                let (cost, operand) = self.estimate(&select.operand);
                if select.test {
                    return (cost + 1.0, Value::Scalar);
                }
                let field = select.field.as_str();
                let child = match operand {
                    Value::RootMetadata if matches!(field, "name" | "generateName") => {
                        return (cost + 1.0, Value::Literal(METADATA_NAME));
                    }
                    Value::Schema(_) if self.at_root && field == "metadata" => {
                        return (cost + 1.0, Value::RootMetadata);
                    }
                    Value::Schema(schema) => {
                        let property = schema.properties.as_ref().and_then(|p| p.get(field));
                        match (property, &schema.additional_properties) {
                            (Some(p), _) => Some(p),
                            (None, Some(JSONSchemaPropsOrBool::Schema(values))) => Some(&**values),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                match child {
                    Some(child) => {
                        let value = Value::Schema(child);
                        self.reached(value, field);
                        (cost + 1.0, value)
                    }
                    None => {
                        self.problem(format!(
                            "the rule selects {field}, which the schema does not declare"
                        ));
                        (cost + 1.0, Value::Scalar)
                    }
                }
            }
            Expr::Call(call) => {
                let mut cost = 0.0;
                let mut values = Vec::new();
                for arg in call.target.iter().map(|t| &**t).chain(call.args.iter()) {
                    let (c, v) = self.estimate(arg);
                    cost += c;
                    values.push(v);
                }
                let name = call.func_name.as_str();
                let call_cost = match name {
                    "_&&_" | "_||_" | "_?_:_" | "@not_strictly_false" => 0.0,
                    "!_" | "-_" | "_<_" | "_<=_" | "_>_" | "_>=_" | "_+_" | "_-_" | "_*_"
                    | "_/_" | "_%_" | "size" => 1.0,
                    "_==_" | "_!=_" => {
                        let longest = values
                            .iter()
                            .map(|v| self.size(*v, "an operand of a comparison"))
                            .max()
                            .unwrap_or(1);
                        1.0 + (0.1 * longest as f64).ceil()
                    }
                    "matches" | "contains" | "startsWith" | "endsWith" => {
                        let [subject, pattern] = values[..] else {
                            self.problem(format!("{name} with {} arguments", values.len()));
                            return (cost, Value::Scalar);
                        };
                        let subject = self.size(subject, "the subject of a string function") as f64;
                        let pattern = self.size(pattern, "a pattern") as f64;
                        let factor = if name == "matches" { 0.25 } else { 0.1 };
                        1.0 + (0.1 * subject).ceil() * (factor * pattern).ceil().max(1.0)
                    }
                    other => {
                        self.problem(format!(
                            "the estimator does not know the cost of {other}; teach it in crds/tests/crd_schema_rules.rs"
                        ));
                        1.0
                    }
                };
                (cost + call_cost, Value::Scalar)
            }
            Expr::Comprehension(comprehension) => self.comprehension(comprehension),
            Expr::List(list) => {
                let cost = list.elements.iter().map(|e| self.estimate(e).0).sum();
                (cost, Value::Scalar)
            }
            other => {
                self.problem(format!("the estimator does not handle {other:?}"));
                (0.0, Value::Scalar)
            }
        }
    }

    fn comprehension(&mut self, c: &'s ComprehensionExpr) -> (f64, Value<'s>) {
        let (range_cost, range) = self.estimate(&c.iter_range);
        let elements = self.size(range, "the range of a comprehension") as f64;
        let element = match range {
            Value::Schema(schema) => match (&schema.items, &schema.additional_properties) {
                (Some(JSONSchemaPropsOrArray::Schema(item)), _) => Value::Schema(item),
                (_, Some(_)) => Value::MapKey,
                _ => Value::Scalar,
            },
            _ => Value::Scalar,
        };
        let saved = self.vars.clone();
        self.vars.insert(c.iter_var.clone(), element);
        self.vars.insert(c.accu_var.clone(), Value::Scalar);
        let (init, _) = self.estimate(&c.accu_init);
        let (cond, _) = self.estimate(&c.loop_cond);
        let (step, _) = self.estimate(&c.loop_step);
        let (result, _) = self.estimate(&c.result);
        self.vars = saved;
        (
            range_cost + init + elements * (cond + step) + result,
            Value::Scalar,
        )
    }
}

/// Walks one schema node: its formats, its rules, then its children with their cardinality
/// (`None` once some list or map above has no bound; the path names it).
fn visit<'s>(
    schema: &'s JSONSchemaProps,
    path: &str,
    cardinality: Result<u64, String>,
    report: &mut Report,
) {
    if let Some(format) = &schema.format
        && !format_is_known(schema.type_.as_deref(), format)
    {
        report.problems.push(format!(
            "{path}: format {format:?} is not one the API server knows"
        ));
    }
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        let rule_path = if path.is_empty() {
            "(root)".to_owned()
        } else {
            path.to_owned()
        };
        let times = match &cardinality {
            Ok(n) => *n,
            Err(unbounded) => {
                report.problems.push(format!(
                    "{rule_path}: rule {:?} sits inside {unbounded}, which has no maxItems/maxProperties",
                    rule.rule
                ));
                1
            }
        };
        let expr = match Parser::new().parse(&rule.rule) {
            Ok(expr) => expr,
            Err(e) => {
                report.problems.push(format!(
                    "{rule_path}: rule {:?} does not parse: {e}",
                    rule.rule
                ));
                continue;
            }
        };
        // The parsed expression is borrowed for the schema's lifetime by the estimator, so it is
        // leaked; this is a test, and there are a handful of rules.
        let expr: &'s IdedExpr = Box::leak(Box::new(expr));
        let mut estimator = Estimator {
            path: &rule_path,
            at_root: path.is_empty(),
            report,
            vars: BTreeMap::from([("self".to_owned(), Value::Schema(schema))]),
        };
        let (cost, _) = estimator.estimate(expr);
        report
            .rules
            .push((rule_path, rule.rule.clone(), cost, times));
    }
    let child_cardinality = |factor: Option<i64>, what: &str| match (&cardinality, factor) {
        (Ok(n), Some(f)) => Ok(n.saturating_mul(f.max(0) as u64)),
        (Err(e), _) => Err(e.clone()),
        (Ok(_), None) => Err(format!("{what} {path}")),
    };
    for (name, child) in schema.properties.iter().flatten() {
        visit(
            child,
            &format!("{path}.{name}"),
            cardinality.clone(),
            report,
        );
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
        let n = child_cardinality(schema.max_items, "the list");
        visit(item, &format!("{path}[]"), n, report);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &schema.additional_properties {
        let n = child_cardinality(schema.max_properties, "the map");
        visit(values, &format!("{path}{{}}"), n, report);
    }
}

fn check_all() -> Vec<(String, Report)> {
    vigil_crds::crds()
        .into_iter()
        .map(|(file, crd)| {
            let mut report = Report::default();
            for version in &crd.spec.versions {
                let Some(schema) = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                else {
                    report
                        .problems
                        .push(format!("version {} has no schema", version.name));
                    continue;
                };
                // Leaked so the estimator may borrow it for the rest of the test.
                let schema: &'static JSONSchemaProps = Box::leak(Box::new(schema.clone()));
                visit(schema, "", Ok(1), &mut report);
            }
            (file, report)
        })
        .collect()
}

#[test]
fn crds_are_within_the_api_servers_cel_cost_limits_and_formats() {
    let mut problems = Vec::new();
    for (file, report) in check_all() {
        let mut total = 0.0;
        for (path, rule, cost, times) in &report.rules {
            let weighed = cost * *times as f64;
            total += weighed;
            println!("{file} {path}: cost {cost} x {times} = {weighed}: {rule}");
            if weighed > RULE_LIMIT / MARGIN {
                problems.push(format!(
                    "{file} {path}: rule {rule:?} is estimated at {weighed} (cost {cost} x {times}), over a tenth of the API server's {RULE_LIMIT}"
                ));
            }
        }
        println!("{file}: total {total}");
        if total > CRD_LIMIT / MARGIN {
            problems.push(format!(
                "{file}: rules total {total}, over a tenth of {CRD_LIMIT}"
            ));
        }
        problems.extend(report.problems.iter().map(|p| format!("{file} {p}")));
    }
    assert!(
        problems.is_empty(),
        "CRDs a real API server would refuse or warn about:\n{}",
        problems.join("\n")
    );
}

/// The checks above must be able to fail: an unbounded string under a regex rule, a rule in an
/// unbounded list and a Rust integer format are each reported.
#[test]
fn the_schema_check_catches_what_the_api_server_refused() {
    let schema: JSONSchemaProps = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {
            "types": {
                "type": "array",
                "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(t, t.matches('^[A-Za-z]+:Runtime/[!-~]+$'))"}]
            },
            "lists": {
                "type": "array",
                "items": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 10,
                             "x-kubernetes-validations": [{"rule": "size(self) > 0"}]}
                }}
            },
            "count": {"type": "integer", "format": "uint32"},
            "criterion": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"equals": {"type": "array", "items": {"type": "string"}}},
                    "x-kubernetes-validations": [{"rule": "has(self.equals)"}]}
            }
        }
    }))
    .expect("a valid schema");
    let schema: &'static JSONSchemaProps = Box::leak(Box::new(schema));
    let mut report = Report::default();
    visit(schema, "", Ok(1), &mut report);
    let all = report.problems.join("\n");
    assert!(
        all.contains(".types: the rule reaches self (array), which has no bound"),
        "{all}"
    );
    assert!(
        all.contains("the rule reaches t (string), which has no bound"),
        "{all}"
    );
    assert!(
        all.contains(".lists[].name: rule \"size(self) > 0\" sits inside the list .lists"),
        "{all}"
    );
    assert!(all.contains(".count: format \"uint32\""), "{all}");
    assert!(
        all.contains(".criterion{}: rule \"has(self.equals)\" sits inside the map .criterion"),
        "{all}"
    );
    let (_, _, cost, _) = report
        .rules
        .iter()
        .find(|(path, ..)| path == ".types")
        .expect("the rule on .types was estimated");
    assert!(
        *cost > RULE_LIMIT,
        "an unbounded regex rule must be estimated over the limit: {cost}"
    );
}
