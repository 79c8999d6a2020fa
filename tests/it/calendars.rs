//! Each local calendar kind through the HTTP endpoints with a real server: list → book → the slot is gone
//! → cancel → it is back → reschedule moves it; time zones on both sides of UTC across DST changes; the
//! 50-way race on one slot; idempotency keys; errors that name the field.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use futures_util::future::join_all;
use serde_json::{json, Value};
use slotline::calendar::FixedClock;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, Db, TestApp};

crate::on_every_backend!(
    demo_calendar_round_trip,
    builtin_calendars_across_dst_changes,
    fifty_concurrent_bookings_one_winner,
    idempotency_keys_book_once,
    scheduling_errors_are_clear,
);

fn slot_ids(list: &Value) -> Vec<String> {
    list["slots"].as_array().expect("slots").iter().filter_map(|s| s["id"].as_str().map(str::to_string)).collect()
}

async fn slots(app: &TestApp, agent: &str, days: u32) -> Value {
    let (status, body) = app.get(&format!("/v1/agents/{agent}/slots?range_days={days}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn book(app: &TestApp, agent: &str, slot: &str, name: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/agents/{agent}/bookings"),
        json!({"slot_id": slot, "attendee_name": name, "attendee_email": format!("{}@example.com", name.to_lowercase())}),
    )
    .await
}

/// list → book → gone → cancel → back → reschedule moves it.
async fn round_trip(app: &TestApp, agent: &str, days: u32) {
    let before = slot_ids(&slots(app, agent, days).await);
    assert!(before.len() >= 3, "{before:?}");
    let (status, booking) = book(app, agent, &before[0], "Ada").await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["attendee_email"], "ada@example.com");
    let after = slot_ids(&slots(app, agent, days).await);
    assert!(!after.contains(&before[0]), "a booked slot disappears");
    assert!(after.contains(&before[1]));

    let (_, listed) = app.get(&format!("/v1/bookings?agent_id={agent}")).await;
    assert_eq!(listed["bookings"].as_array().map(Vec::len), Some(1));

    let id = booking["id"].as_str().expect("id");
    let (status, cancelled) = app.post(&format!("/v1/bookings/{id}/cancel"), json!({"reason": "changed plans"})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "changed plans");
    assert!(slot_ids(&slots(app, agent, days).await).contains(&before[0]), "a cancelled slot comes back");
    let (status, body) = app.post(&format!("/v1/bookings/{id}/cancel"), json!({})).await;
    assert_error(status, &body, 409, "booking_not_active", None);

    let (_, again) = book(app, agent, &before[0], "Bob").await;
    let again_id = again["id"].as_str().expect("id");
    let (status, moved) = app.post(&format!("/v1/bookings/{again_id}/reschedule"), json!({"slot_id": before[2]})).await;
    assert_eq!(status, 201, "{moved}");
    assert_eq!(moved["rescheduled_from"], again_id);
    assert_eq!(moved["attendee_name"], "Bob");
    let now_free = slot_ids(&slots(app, agent, days).await);
    assert!(now_free.contains(&before[0]) && !now_free.contains(&before[2]), "reschedule moves the booking");
    let (_, old) = app.get(&format!("/v1/bookings?agent_id={agent}")).await;
    let statuses: Vec<&str> =
        old["bookings"].as_array().expect("list").iter().filter_map(|b| b["status"].as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "confirmed").count(), 1, "{statuses:?}");
    assert!(statuses.contains(&"rescheduled") && statuses.contains(&"cancelled"));
}

async fn demo_calendar_round_trip(db: Db) {
    // A pinned clock: listings before and after a restart must see the same window.
    let app = spawn_app_with(db, Arc::new(FixedClock(Utc::now())), |_| {}).await;
    let (_, agents) = app.get("/v1/agents").await;
    let demo = agents["agents"][0]["id"].as_str().expect("demo").to_string();
    let list = slots(&app, &demo, 14).await;
    assert_eq!(list["timezone"], "America/New_York");
    for slot in list["slots"].as_array().expect("slots") {
        let local = DateTime::parse_from_rfc3339(slot["local"].as_str().expect("local")).expect("rfc3339");
        let hour_minute = local.format("%H:%M").to_string();
        assert!(
            ("09:00".."18:00").contains(&hour_minute.as_str()) && hour_minute.ends_with(":00")
                || hour_minute.ends_with(":30")
        );
        let (start, end) = (slot["start"].as_str().expect("start"), slot["end"].as_str().expect("end"));
        let length =
            DateTime::parse_from_rfc3339(end).expect("end") - DateTime::parse_from_rfc3339(start).expect("start");
        assert_eq!(length, Duration::minutes(30));
    }
    round_trip(&app, &demo, 14).await;
    let metrics = app.http.get(&app.metrics_url).send().await.expect("scrape").text().await.expect("text");
    assert!(
        metrics.contains(r#"slotline_bookings_total{agent="Demo Agent",calendar="demo",outcome="success"} 2"#),
        "{metrics}"
    );
    assert!(metrics
        .contains(r#"slotline_booking_reschedules_total{agent="Demo Agent",calendar="demo",outcome="success"} 1"#));

    // Bookings live in the database: after a restart the same slots are offered, minus the booked one.
    let before_restart = slot_ids(&slots(&app, &demo, 14).await);
    let app = app.restart().await;
    assert_eq!(slot_ids(&slots(&app, &demo, 14).await), before_restart, "reproducible across restarts");
    let (status, booked) = book(&app, &demo, &before_restart[3], "Cy").await;
    assert_eq!(status, 201, "{booked}");
    let app = app.restart().await;
    let after_restart = slot_ids(&slots(&app, &demo, 14).await);
    assert!(!after_restart.contains(&before_restart[3]), "a booked slot stays gone after a restart");
    assert_eq!(after_restart.len(), before_restart.len() - 1);
    app.stop().await;
}

/// For each zone: a pinned clock a day before its DST change (or any day for Kolkata), working hours
/// around the change, and the round trip.
async fn builtin_calendars_across_dst_changes(db: Db) {
    let cases: [(&str, DateTime<Utc>, &str, &[&str]); 4] = [
        // 2027-03-14 02:00 → 03:00 (spring forward, UTC-5 → UTC-4)
        ("America/New_York", Utc.with_ymd_and_hms(2027, 3, 13, 12, 0, 0).unwrap(), "2027-03-14", &["02:00", "02:30"]),
        // 2027-03-28 02:00 → 03:00 (UTC+1 → UTC+2)
        ("Europe/Berlin", Utc.with_ymd_and_hms(2027, 3, 27, 12, 0, 0).unwrap(), "2027-03-28", &["02:00", "02:30"]),
        // no DST, UTC+5:30
        ("Asia/Kolkata", Utc.with_ymd_and_hms(2027, 3, 27, 12, 0, 0).unwrap(), "2027-03-28", &[]),
        // 2026-10-04 02:00 → 02:30 (UTC+10:30 → UTC+11, a 30-minute shift)
        ("Australia/Lord_Howe", Utc.with_ymd_and_hms(2026, 10, 2, 12, 0, 0).unwrap(), "2026-10-04", &["02:00"]),
    ];
    for (zone, now, change_day, skipped) in cases {
        let app = spawn_app_with(db, Arc::new(FixedClock(now)), |_| {}).await;
        let (status, agent) = app
            .post(
                "/v1/agents",
                json!({"name": format!("Clinic {zone}"), "timezone": zone, "calendar": {"kind": "builtin", "slot_minutes": 30,
                       "rules": {"working_hours": {"sun": [["00:00", "04:00"]], "mon": [["09:00", "11:00"]]}, "minimum_notice_minutes": 0}}}),
            )
            .await;
        assert_eq!(status, 201, "{agent}");
        let agent = agent["id"].as_str().expect("id").to_string();
        let list = slots(&app, &agent, 3).await;
        assert_eq!(list["timezone"], zone);
        let on_change_day: Vec<String> = list["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .filter_map(|s| s["local"].as_str())
            .filter(|l| l.starts_with(change_day))
            .map(|l| l[11..16].to_string())
            .collect();
        let expected: Vec<String> = (0..8)
            .map(|i| format!("{:02}:{:02}", i / 2, (i % 2) * 30))
            .filter(|t| !skipped.contains(&t.as_str()))
            .collect();
        assert_eq!(on_change_day, expected, "{zone}: local times that do not exist are not offered");
        for slot in list["slots"].as_array().expect("slots") {
            let start = DateTime::parse_from_rfc3339(slot["start"].as_str().expect("start")).expect("start");
            let end = DateTime::parse_from_rfc3339(slot["end"].as_str().expect("end")).expect("end");
            assert_eq!(end - start, Duration::minutes(30), "{zone}: a slot is 30 real minutes");
            let local = DateTime::parse_from_rfc3339(slot["local"].as_str().expect("local")).expect("local");
            assert_eq!(local, start, "{zone}: local is the same instant");
        }
        round_trip(&app, &agent, 3).await;
        app.stop().await;
    }
}

async fn fifty_concurrent_bookings_one_winner(db: Db) {
    let app = spawn_app(db).await;
    let (_, agent) = app
        .post("/v1/agents", json!({"name": "Racy", "timezone": "Europe/Berlin", "calendar": {"kind": "builtin", "rules": {
            "working_hours": {"mon": [["08:00","18:00"]], "tue": [["08:00","18:00"]], "wed": [["08:00","18:00"]],
                              "thu": [["08:00","18:00"]], "fri": [["08:00","18:00"]], "sat": [["08:00","18:00"]], "sun": [["08:00","18:00"]]},
            "buffer_after_minutes": 10}}}))
        .await;
    let agent = agent["id"].as_str().expect("id").to_string();
    let slot = slot_ids(&slots(&app, &agent, 7).await)[5].clone();
    let attempts = (0..50).map(|i| {
        let (app, agent, slot) = (&app, &agent, &slot);
        async move { book(app, agent, slot, &format!("Caller{i}")).await }
    });
    let results = join_all(attempts).await;
    let won: Vec<&Value> = results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert_eq!(won.len(), 1, "exactly one booking wins: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    for (status, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_error(*status, body, 409, "slot_taken", None);
        assert!(body["error"]["alternatives"].as_array().is_some_and(|a| !a.is_empty()), "{body}");
    }
    let (_, listed) = app.get(&format!("/v1/bookings?agent_id={agent}")).await;
    let confirmed = listed["bookings"].as_array().expect("list").iter().filter(|b| b["status"] == "confirmed").count();
    assert_eq!(confirmed, 1);
    app.stop().await;
}

async fn idempotency_keys_book_once(db: Db) {
    let app = spawn_app(db).await;
    let (_, agents) = app.get("/v1/agents").await;
    let demo = agents["agents"][0]["id"].as_str().expect("demo").to_string();
    let slot = slot_ids(&slots(&app, &demo, 14).await)[0].clone();
    let send = || async {
        let response = app
            .http
            .post(app.url(&format!("/v1/agents/{demo}/bookings")))
            .bearer_auth(&app.admin)
            .header("Idempotency-Key", "call-42-turn-7")
            .json(&json!({"slot_id": slot, "attendee_name": "Ada", "attendee_phone": "+1 555 010 0199"}))
            .send()
            .await
            .expect("send");
        (response.status().as_u16(), response.json::<Value>().await.expect("json"))
    };
    let (first, second) = (send().await, send().await);
    assert_eq!((first.0, second.0), (201, 201));
    assert_eq!(first.1["id"], second.1["id"], "a retry returns the same booking");
    assert_eq!(first.1["attendee_phone"], "+15550100199");
    let (_, listed) = app.get(&format!("/v1/bookings?agent_id={demo}")).await;
    assert_eq!(listed["bookings"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

async fn scheduling_errors_are_clear(db: Db) {
    let app = spawn_app(db).await;
    let (_, agents) = app.get("/v1/agents").await;
    let demo = agents["agents"][0]["id"].as_str().expect("demo").to_string();
    let slot = slot_ids(&slots(&app, &demo, 14).await)[0].clone();
    let other = app.create_agent("Other").await;
    let other_slot = slot_ids(&slots(&app, &other, 14).await)[0].clone();
    let path = format!("/v1/agents/{demo}/bookings");
    for (body, field) in [
        (json!({"slot_id": "ST_nonsense", "attendee_name": "A", "attendee_email": "a@example.com"}), "slot_id"),
        (json!({"slot_id": other_slot, "attendee_name": "A", "attendee_email": "a@example.com"}), "slot_id"),
        (json!({"slot_id": slot, "attendee_name": "", "attendee_email": "a@example.com"}), "attendee_name"),
        (json!({"slot_id": slot, "attendee_name": "A", "attendee_email": "at-example"}), "attendee_email"),
        (json!({"slot_id": slot, "attendee_name": "A", "attendee_phone": "12"}), "attendee_phone"),
        (json!({"slot_id": slot, "attendee_name": "A"}), "attendee_email"),
        (json!({"attendee_name": "A", "attendee_email": "a@example.com"}), "slot_id"),
    ] {
        let (status, response) = app.post(&path, body).await;
        assert_error(status, &response, 422, "validation_failed", Some(field));
    }
    let (status, body) = app.get(&format!("/v1/agents/{demo}/slots?range_days=0")).await;
    assert_error(status, &body, 422, "validation_failed", Some("range_days"));
    let (status, body) = app.get(&format!("/v1/agents/{}/slots", uuid::Uuid::new_v4())).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = app.post(&format!("/v1/bookings/{}/cancel", uuid::Uuid::new_v4()), json!({})).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = app.call(reqwest::Method::POST, &path, Some(&app.analyst.clone()), Some(json!({}))).await;
    assert_error(status, &body, 403, "forbidden", None);
    let (_, listed) = app.get("/v1/bookings").await;
    assert_eq!(listed["bookings"], json!([]), "nothing was booked");

    // A builtin calendar with nothing open says so, in the seed's words.
    let (_, closed) = app
        .post("/v1/agents", json!({"name": "Closed", "timezone": "UTC", "calendar": {"kind": "builtin", "rules": {"working_hours": {}}}}))
        .await;
    let list = slots(&app, closed["id"].as_str().expect("id"), 14).await;
    assert_eq!(list["slots"], json!([]));
    assert_eq!(list["message"], "No appointment slots available");
    app.stop().await;
}
