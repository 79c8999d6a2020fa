//! The SQL both backends share. SQLite and PostgreSQL accept the same text for everything here (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`), so it is written once and expanded for each backend's pool
//! and row type by [`shared_store`]; what differs is passed in as backend-specific trait items.

/// Implements [`crate::storage::Store`] for `$store` (with a `pool` field) whose rows are `$row`.
/// `$specific` are the trait items the backend writes itself.
macro_rules! shared_store {
    ($store:ty, $row:ty, { $($specific:tt)* }) => {
        impl $store {
            fn agent_from_row(row: &$row) -> Result<AgentRecord, StoreError> {
                use sqlx::Row as _;
                let sealed: Option<Vec<u8>> = row.try_get("calcom_api_key_sealed")?;
                let hint: Option<String> = row.try_get("calcom_api_key_hint")?;
                let rules: Option<String> = row.try_get("calendar_rules")?;
                let rules = rules.map(super::rules_text).transpose()?;
                Ok(AgentRecord {
                    id: parse_uuid("agents.id", row.try_get("id")?)?,
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    prompt: row.try_get("prompt")?,
                    greeting: row.try_get("greeting")?,
                    language: row.try_get("language")?,
                    timezone: row.try_get("timezone")?,
                    calendar: CalendarConfig {
                        kind: parse_kind(row.try_get("calendar_kind")?)?,
                        calcom_api_key: sealed.map(|sealed| SealedSecret { sealed, hint: hint.unwrap_or_default() }),
                        event_type_slug: row.try_get("calcom_event_type_slug")?,
                        event_type_id: row.try_get("calcom_event_type_id")?,
                        username: row.try_get("calcom_username")?,
                        slot_minutes: row.try_get("slot_minutes")?,
                        rules,
                        calcom_webhook_secret: row.try_get("calcom_webhook_secret_sealed")?,
                    },
                    voice: row.try_get("voice")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn token_from_row(row: &$row) -> Result<ApiTokenRecord, StoreError> {
                use sqlx::Row as _;
                Ok(ApiTokenRecord {
                    id: parse_uuid("api_tokens.id", row.try_get("id")?)?,
                    name: row.try_get("name")?,
                    scope: parse_scope(row.try_get("scope")?)?,
                    token_hash: row.try_get("token_hash")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            }

            fn number_from_row(row: &$row) -> Result<PhoneNumberRecord, StoreError> {
                use sqlx::Row as _;
                Ok(PhoneNumberRecord {
                    e164: row.try_get("e164")?,
                    agent_id: parse_uuid("phone_numbers.agent_id", row.try_get("agent_id")?)?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn booking_from_row(row: &$row) -> Result<BookingRecord, StoreError> {
                use sqlx::Row as _;
                let agent_id: Option<&str> = row.try_get("agent_id")?;
                Ok(BookingRecord {
                    id: parse_uuid("bookings.id", row.try_get("id")?)?,
                    agent_id: agent_id.map(|id| parse_uuid("bookings.agent_id", id)).transpose()?,
                    calendar_kind: row.try_get("calendar_kind")?,
                    external_uid: row.try_get("external_uid")?,
                    start_at: row.try_get("start_at")?,
                    end_at: row.try_get("end_at")?,
                    attendee_name: row.try_get("attendee_name")?,
                    attendee_email: row.try_get("attendee_email")?,
                    attendee_phone: row.try_get("attendee_phone")?,
                    notes: row.try_get("notes")?,
                    status: row.try_get("status")?,
                    source_call_id: row.try_get("source_call_id")?,
                    idempotency_key: row.try_get("idempotency_key")?,
                    cancel_reason: row.try_get("cancel_reason")?,
                    rescheduled_from: row
                        .try_get::<Option<&str>, _>("rescheduled_from")?
                        .map(|id| parse_uuid("bookings.rescheduled_from", id))
                        .transpose()?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            async fn insert_booking_with<'e, E>(executor: E, booking: &BookingRecord, busy: BusyRange) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
            {
                sqlx::query(
                    "INSERT INTO bookings (id, agent_id, calendar_kind, external_uid, start_at, end_at, busy_from, \
                     busy_until, attendee_name, attendee_email, attendee_phone, notes, status, source_call_id, \
                     idempotency_key, cancel_reason, rescheduled_from, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .bind(booking.id.to_string())
                .bind(booking.agent_id.map(|id| id.to_string()))
                .bind(&booking.calendar_kind)
                .bind(&booking.external_uid)
                .bind(booking.start_at)
                .bind(booking.end_at)
                .bind(busy.from)
                .bind(busy.until)
                .bind(&booking.attendee_name)
                .bind(&booking.attendee_email)
                .bind(&booking.attendee_phone)
                .bind(&booking.notes)
                .bind(&booking.status)
                .bind(&booking.source_call_id)
                .bind(&booking.idempotency_key)
                .bind(&booking.cancel_reason)
                .bind(booking.rescheduled_from.map(|id| id.to_string()))
                .bind(booking.created_at)
                .bind(booking.updated_at)
                .execute(executor)
                .await
                .map_err(|e| map_unique(e, "booking"))?;
                Ok(())
            }

            /// Inserts a `calls` row; with `keep_existing`, a row of the same room instance wins.
            async fn write_call(&self, call: &CallRecord, keep_existing: bool) -> Result<(), sqlx::Error> {
                macro_rules! insert {
                    () => {
                        "INSERT INTO calls (id, sip_call_id, agent_id, dialed, caller, transport, started_at, \
                         answered_at, ended_at, end_reason, sip_status, room, room_sid) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                    };
                }
                const INSERT: &str = insert!();
                const INSERT_NEW: &str = concat!(insert!(), " ON CONFLICT DO NOTHING");
                sqlx::query(if keep_existing { INSERT_NEW } else { INSERT })
                    .bind(call.id.to_string())
                    .bind(&call.sip_call_id)
                    .bind(call.agent_id.map(|id| id.to_string()))
                    .bind(&call.dialed)
                    .bind(&call.caller)
                    .bind(&call.transport)
                    .bind(call.started_at)
                    .bind(call.answered_at)
                    .bind(call.ended_at)
                    .bind(&call.end_reason)
                    .bind(call.sip_status)
                    .bind(&call.room)
                    .bind(&call.room_sid)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            fn call_from_row(row: &$row) -> Result<CallRecord, StoreError> {
                use sqlx::Row as _;
                let agent_id: Option<&str> = row.try_get("agent_id")?;
                Ok(CallRecord {
                    id: parse_uuid("calls.id", row.try_get("id")?)?,
                    sip_call_id: row.try_get("sip_call_id")?,
                    agent_id: agent_id.map(|id| parse_uuid("calls.agent_id", id)).transpose()?,
                    dialed: row.try_get("dialed")?,
                    caller: row.try_get("caller")?,
                    transport: row.try_get("transport")?,
                    started_at: row.try_get("started_at")?,
                    answered_at: row.try_get("answered_at")?,
                    ended_at: row.try_get("ended_at")?,
                    end_reason: row.try_get("end_reason")?,
                    sip_status: row.try_get("sip_status")?,
                    room: row.try_get("room")?,
                    room_sid: row.try_get("room_sid")?,
                })
            }
        }

        #[async_trait]
        impl Store for $store {
            $($specific)*

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
                let cal = &agent.calendar;
                sqlx::query(
                    "INSERT INTO agents (id, name, description, prompt, greeting, language, timezone, \
                     calendar_kind, calcom_api_key_sealed, calcom_api_key_hint, calcom_event_type_slug, \
                     calcom_event_type_id, calcom_username, slot_minutes, created_at, updated_at, calendar_rules, \
                     calcom_webhook_secret_sealed, voice) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .bind(agent.id.to_string())
                .bind(&agent.name)
                .bind(&agent.description)
                .bind(&agent.prompt)
                .bind(&agent.greeting)
                .bind(&agent.language)
                .bind(&agent.timezone)
                .bind(cal.kind.as_str())
                .bind(cal.calcom_api_key.as_ref().map(|s| s.sealed.clone()))
                .bind(cal.calcom_api_key.as_ref().map(|s| s.hint.clone()))
                .bind(&cal.event_type_slug)
                .bind(cal.event_type_id)
                .bind(&cal.username)
                .bind(cal.slot_minutes)
                .bind(agent.created_at)
                .bind(agent.updated_at)
                .bind(cal.rules.as_deref())
                .bind(&cal.calcom_webhook_secret)
                .bind(agent.voice.as_deref())
                .execute(&self.pool)
                .await
                .map_err(|e| map_unique(e, "agent name"))?;
                Ok(())
            }

            async fn update_agent(&self, agent: &AgentRecord) -> Result<bool, StoreError> {
                let cal = &agent.calendar;
                let done = sqlx::query(
                    "UPDATE agents SET name = $2, description = $3, prompt = $4, greeting = $5, language = $6, \
                     timezone = $7, calendar_kind = $8, calcom_api_key_sealed = $9, calcom_api_key_hint = $10, \
                     calcom_event_type_slug = $11, calcom_event_type_id = $12, calcom_username = $13, \
                     slot_minutes = $14, updated_at = $15, calendar_rules = $16, calcom_webhook_secret_sealed = $17, \
                     voice = $18 WHERE id = $1",
                )
                .bind(agent.id.to_string())
                .bind(&agent.name)
                .bind(&agent.description)
                .bind(&agent.prompt)
                .bind(&agent.greeting)
                .bind(&agent.language)
                .bind(&agent.timezone)
                .bind(cal.kind.as_str())
                .bind(cal.calcom_api_key.as_ref().map(|s| s.sealed.clone()))
                .bind(cal.calcom_api_key.as_ref().map(|s| s.hint.clone()))
                .bind(&cal.event_type_slug)
                .bind(cal.event_type_id)
                .bind(&cal.username)
                .bind(cal.slot_minutes)
                .bind(agent.updated_at)
                .bind(cal.rules.as_deref())
                .bind(&cal.calcom_webhook_secret)
                .bind(agent.voice.as_deref())
                .execute(&self.pool)
                .await
                .map_err(|e| map_unique(e, "agent name"))?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_agent(&self, id: Uuid) -> Result<Option<AgentRecord>, StoreError> {
                sqlx::query("SELECT * FROM agents WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::agent_from_row(&row))
                    .transpose()
            }

            async fn find_agent_by_name(&self, name: &str) -> Result<Option<AgentRecord>, StoreError> {
                sqlx::query("SELECT * FROM agents WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::agent_from_row(&row))
                    .transpose()
            }

            async fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
                sqlx::query("SELECT * FROM agents ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::agent_from_row)
                    .collect()
            }

            async fn delete_agent(&self, id: Uuid, force: bool) -> Result<AgentDeletion, StoreError> {
                use sqlx::Row as _;
                let mut tx = self.pool.begin().await?;
                let numbers: i64 = sqlx::query("SELECT COUNT(*) AS n FROM phone_numbers WHERE agent_id = $1")
                    .bind(id.to_string())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                if numbers > 0 && !force {
                    return Ok(AgentDeletion::HasNumbers(numbers));
                }
                let done = sqlx::query("DELETE FROM agents WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(if done.rows_affected() == 1 { AgentDeletion::Deleted } else { AgentDeletion::NotFound })
            }

            async fn put_number(&self, e164: &str, agent_id: Uuid) -> Result<(PhoneNumberRecord, bool), StoreError> {
                let existed = self.get_number(e164).await?.is_some();
                let now = super::now();
                let row = sqlx::query(
                    "INSERT INTO phone_numbers (e164, agent_id, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (e164) DO UPDATE SET agent_id = excluded.agent_id, updated_at = excluded.updated_at \
                     RETURNING *",
                )
                .bind(e164)
                .bind(agent_id.to_string())
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_unique(e, "phone number"))?;
                Ok((Self::number_from_row(&row)?, !existed))
            }

            async fn get_number(&self, e164: &str) -> Result<Option<PhoneNumberRecord>, StoreError> {
                sqlx::query("SELECT * FROM phone_numbers WHERE e164 = $1")
                    .bind(e164)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::number_from_row(&row))
                    .transpose()
            }

            async fn list_numbers(&self, agent_id: Option<Uuid>) -> Result<Vec<PhoneNumberRecord>, StoreError> {
                sqlx::query("SELECT * FROM phone_numbers WHERE ($1 IS NULL OR agent_id = $1) ORDER BY e164")
                    .bind(agent_id.map(|id| id.to_string()))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::number_from_row)
                    .collect()
            }

            async fn delete_number(&self, e164: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM phone_numbers WHERE e164 = $1")
                    .bind(e164)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn put_prefix(&self, prefix: &str, agent_id: Uuid) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO number_prefixes (prefix, agent_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (prefix) DO UPDATE SET agent_id = excluded.agent_id",
                )
                .bind(prefix)
                .bind(agent_id.to_string())
                .bind(super::now())
                .execute(&self.pool)
                .await
                .map_err(|e| map_unique(e, "number prefix"))?;
                Ok(())
            }

            async fn list_prefixes(&self) -> Result<Vec<NumberPrefixRecord>, StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query("SELECT prefix, agent_id FROM number_prefixes ORDER BY prefix")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(NumberPrefixRecord {
                            prefix: row.try_get("prefix")?,
                            agent_id: parse_uuid("number_prefixes.agent_id", row.try_get("agent_id")?)?,
                        })
                    })
                    .collect()
            }

            async fn route_number(&self, e164: &str) -> Result<Option<Uuid>, StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT agent_id FROM ( \
                       SELECT agent_id, 100 AS rank FROM phone_numbers WHERE e164 = $1 \
                       UNION ALL \
                       SELECT agent_id, length(prefix) AS rank FROM number_prefixes \
                       WHERE substr($1, 1, length(prefix)) = prefix \
                     ) AS candidates ORDER BY rank DESC LIMIT 1",
                )
                .bind(e164)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| parse_uuid("agent_id", row.try_get("agent_id")?)).transpose()
            }

            async fn insert_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO api_tokens (id, name, scope, token_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token.id.to_string())
                .bind(&token.name)
                .bind(token.scope.as_str())
                .bind(&token.token_hash)
                .bind(token.created_at)
                .bind(token.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_unique(e, "api token"))?;
                Ok(())
            }

            async fn find_token(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
                let row = sqlx::query("SELECT * FROM api_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row| Self::token_from_row(&row)).transpose()
            }

            async fn count_tokens(&self) -> Result<i64, StoreError> {
                use sqlx::Row as _;
                Ok(sqlx::query("SELECT COUNT(*) AS n FROM api_tokens").fetch_one(&self.pool).await?.try_get("n")?)
            }

            async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
                sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::token_from_row)
                    .collect()
            }

            async fn delete_token(&self, id: Uuid) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_bookings(&self, filter: &RecordFilter) -> Result<Vec<BookingRecord>, StoreError> {
                sqlx::query(
                    "SELECT * FROM bookings WHERE ($1 IS NULL OR agent_id = $1) \
                     AND ($2 IS NULL OR start_at >= $2) AND ($3 IS NULL OR start_at < $3) \
                     ORDER BY start_at, id LIMIT $4",
                )
                .bind(filter.agent_id.map(|id| id.to_string()))
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.limit)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::booking_from_row)
                .collect()
            }

            async fn insert_call(&self, call: &CallRecord) -> Result<(), StoreError> {
                self.write_call(call, false).await
                    .map_err(|e| map_unique(e, "call"))?;
                Ok(())
            }

            async fn insert_room_call(&self, call: &CallRecord) -> Result<CallRecord, StoreError> {
                let room_sid = call.room_sid.as_deref().ok_or(StoreError::Corrupt {
                    column: "calls.room_sid",
                    detail: "a room call needs its room sid".into(),
                })?;
                self.write_call(call, true).await?;
                self.find_room_call(room_sid).await?.ok_or(StoreError::Corrupt {
                    column: "calls.room_sid",
                    detail: "the room's call vanished".into(),
                })
            }

            async fn find_room_call(&self, room_sid: &str) -> Result<Option<CallRecord>, StoreError> {
                sqlx::query("SELECT * FROM calls WHERE room_sid = $1")
                    .bind(room_sid)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::call_from_row)
                    .transpose()
            }

            async fn insert_booking(&self, booking: &BookingRecord, busy: BusyRange) -> Result<(), StoreError> {
                Self::insert_booking_with(&self.pool, booking, busy).await
            }

            async fn get_booking(&self, id: Uuid) -> Result<Option<BookingRecord>, StoreError> {
                sqlx::query("SELECT * FROM bookings WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::booking_from_row(&row))
                    .transpose()
            }

            async fn find_booking_by_key(&self, agent_id: Uuid, key: &str) -> Result<Option<BookingRecord>, StoreError> {
                sqlx::query("SELECT * FROM bookings WHERE agent_id = $1 AND idempotency_key = $2")
                    .bind(agent_id.to_string())
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::booking_from_row(&row))
                    .transpose()
            }

            async fn find_booking_by_external_uid(
                &self,
                agent_id: Uuid,
                uid: &str,
            ) -> Result<Option<BookingRecord>, StoreError> {
                sqlx::query("SELECT * FROM bookings WHERE agent_id = $1 AND external_uid = $2")
                    .bind(agent_id.to_string())
                    .bind(uid)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::booking_from_row(&row))
                    .transpose()
            }

            async fn busy_ranges(
                &self,
                agent_id: Uuid,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<BusyRange>, StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT busy_from, busy_until FROM bookings WHERE agent_id = $1 AND status = 'confirmed' \
                     AND busy_from < $3 AND busy_until > $2 ORDER BY busy_from",
                )
                .bind(agent_id.to_string())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| Ok(BusyRange { from: row.try_get("busy_from")?, until: row.try_get("busy_until")? }))
                    .collect()
            }

            async fn find_bookings_by_attendee(
                &self,
                agent_id: Uuid,
                email: Option<&str>,
                phone: Option<&str>,
                from: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<BookingRecord>, StoreError> {
                sqlx::query(
                    "SELECT * FROM bookings WHERE agent_id = $1 AND status = 'confirmed' AND start_at >= $4 \
                     AND ((CAST($2 AS TEXT) IS NOT NULL AND lower(attendee_email) = lower($2)) \
                       OR (CAST($3 AS TEXT) IS NOT NULL AND attendee_phone = $3)) \
                     ORDER BY start_at LIMIT 50",
                )
                .bind(agent_id.to_string())
                .bind(email)
                .bind(phone)
                .bind(from)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::booking_from_row)
                .collect()
            }

            async fn close_booking(
                &self,
                id: Uuid,
                status: &str,
                reason: Option<&str>,
            ) -> Result<Option<BookingRecord>, StoreError> {
                let done = sqlx::query(
                    "UPDATE bookings SET status = $2, cancel_reason = $3, updated_at = $4 \
                     WHERE id = $1 AND status = 'confirmed'",
                )
                .bind(id.to_string())
                .bind(status)
                .bind(reason)
                .bind(super::now())
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_booking(id).await
            }

            async fn reschedule_booking(&self, old: Uuid, new: &BookingRecord, busy: BusyRange) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE bookings SET status = 'rescheduled', updated_at = $2 WHERE id = $1 AND status = 'confirmed'",
                )
                .bind(old.to_string())
                .bind(super::now())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::insert_booking_with(&mut *tx, new, busy).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn update_mirror_booking(&self, booking: &BookingRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE bookings SET status = $2, start_at = $3, end_at = $4, busy_from = $3, busy_until = $4, \
                     cancel_reason = $5, updated_at = $6 WHERE id = $1",
                )
                .bind(booking.id.to_string())
                .bind(&booking.status)
                .bind(booking.start_at)
                .bind(booking.end_at)
                .bind(&booking.cancel_reason)
                .bind(super::now())
                .execute(&self.pool)
                .await
                .map_err(|e| map_unique(e, "booking"))?;
                Ok(())
            }

            async fn set_calcom_ids(&self, agent_id: Uuid, username: &str, event_type_id: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE agents SET calcom_username = $2, calcom_event_type_id = $3 WHERE id = $1")
                    .bind(agent_id.to_string())
                    .bind(username)
                    .bind(event_type_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn update_call(&self, call: &CallRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE calls SET agent_id = $2, answered_at = $3, ended_at = $4, end_reason = $5, sip_status = $6 \
                     WHERE id = $1",
                )
                .bind(call.id.to_string())
                .bind(call.agent_id.map(|id| id.to_string()))
                .bind(call.answered_at)
                .bind(call.ended_at)
                .bind(&call.end_reason)
                .bind(call.sip_status)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_call(&self, id: Uuid) -> Result<Option<CallRecord>, StoreError> {
                sqlx::query("SELECT * FROM calls WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::call_from_row)
                    .transpose()
            }

            async fn insert_transcript_line(&self, line: &TranscriptLine) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO transcript_lines (call_id, seq, speaker, text, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(line.call_id.to_string())
                    .bind(line.seq)
                    .bind(&line.speaker)
                    .bind(&line.text)
                    .bind(line.at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_unique(e, "transcript line"))?;
                Ok(())
            }

            async fn list_transcript(&self, call_id: Uuid) -> Result<Vec<TranscriptLine>, StoreError> {
                use sqlx::Row as _;
                sqlx::query("SELECT * FROM transcript_lines WHERE call_id = $1 ORDER BY seq")
                    .bind(call_id.to_string())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(TranscriptLine {
                            call_id: parse_uuid("transcript_lines.call_id", row.try_get("call_id")?)?,
                            seq: row.try_get("seq")?,
                            speaker: row.try_get("speaker")?,
                            text: row.try_get("text")?,
                            at: row.try_get("at")?,
                        })
                    })
                    .collect()
            }

            async fn purge_transcripts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM transcript_lines WHERE at < $1").bind(before).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn list_calls(&self, filter: &RecordFilter) -> Result<Vec<CallRecord>, StoreError> {
                sqlx::query(
                    "SELECT * FROM calls WHERE ($1 IS NULL OR agent_id = $1) \
                     AND ($2 IS NULL OR started_at >= $2) AND ($3 IS NULL OR started_at < $3) \
                     ORDER BY started_at DESC, id LIMIT $4",
                )
                .bind(filter.agent_id.map(|id| id.to_string()))
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.limit)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::call_from_row)
                .collect()
            }
        }
    };
}

pub(crate) use shared_store;
