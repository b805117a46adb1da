//! Unit tests of the parent module.

use super::*;

#[test]
fn run_id_round_trips_through_the_subject() {
    let s = run_event("01JABC", "completed");
    assert_eq!(s, "tollgate.run.01JABC.completed");
    assert_eq!(run_id_of(&s), Some("01JABC"));
    assert_eq!(run_id_of("tollgate.stage.train"), None);
}
