// slotline console: one module, no dependencies. Pages are rendered from the /v1 API with DOM calls
// (never innerHTML), so nothing the API returns is parsed as markup. The token lives in sessionStorage
// (this tab only) and travels only in the Authorization header.

const TOKEN_KEY = "slotline.token";
const $ = (selector, root = document) => root.querySelector(selector);

let me = null; // { token_id, scope }
let agentsCache = [];

// ---- DOM ------------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function view(...children) {
  const root = $("#view");
  root.replaceChildren(...children);
  return root;
}

const isAdmin = () => me && me.scope === "admin";

// ---- API ------------------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (response.status === 401 && path !== "/v1/me") signOut("Your token was refused; sign in again.");
  return { status: response.status, ok: response.ok, body: json };
}

function errorText(result) {
  const error = result.body && result.body.error;
  return error ? error.message : `request failed (${result.status})`;
}

// ---- sign-in --------------------------------------------------------------------------------------

function showSignIn(message) {
  me = null;
  $("#nav").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#view").hidden = true;
  $("#view").replaceChildren();
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = message || "";
  $("#token").value = "";
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(message);
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  const result = await api("GET", "/v1/me");
  if (!result.ok) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(result.status === 401 ? "That token is not valid." : errorText(result));
    return;
  }
  me = result.body;
  $("#sign-in").hidden = true;
  $("#nav").hidden = false;
  $("#sign-out").hidden = false;
  $("#view").hidden = false;
  $("#who").textContent = me.scope === "admin" ? "admin" : "analyst (read only)";
  $("#who").dataset.scope = me.scope;
  route();
}

// ---- routing --------------------------------------------------------------------------------------

function route() {
  if (!me) return;
  const parts = (location.hash || "#/agents").slice(2).split("/");
  const page = parts[0] || "agents";
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("current", link.dataset.page === page);
  const pages = { agents: agentsPage, numbers: numbersPage, bookings: bookingsPage, calls: callsPage, chat: chatPage };
  (pages[page] || agentsPage)(parts.slice(1)).catch((e) => view(h("p", { class: "error", text: String(e) })));
}

// ---- shared bits ----------------------------------------------------------------------------------

async function loadAgents() {
  const result = await api("GET", "/v1/agents");
  agentsCache = result.ok ? result.body.agents : [];
  return agentsCache;
}

const agentName = (id) => (agentsCache.find((a) => a.id === id) || { name: id ? "(deleted agent)" : "—" }).name;

function agentSelect(attrs, { any = false, selected = "" } = {}) {
  return h("select", attrs,
    any ? h("option", { value: "", text: "All agents" }) : null,
    agentsCache.map((a) => h("option", { value: a.id, selected: a.id === selected, text: a.name })));
}

function when(iso, timeZone) {
  if (!iso) return "—";
  try {
    return new Date(iso).toLocaleString(undefined, { timeZone, dateStyle: "medium", timeStyle: "short" });
  } catch {
    return new Date(iso).toLocaleString();
  }
}

// This week, Monday 00:00 to the next Monday, in the browser's time zone.
function thisWeek() {
  const from = new Date();
  from.setHours(0, 0, 0, 0);
  from.setDate(from.getDate() - ((from.getDay() + 6) % 7));
  const to = new Date(from);
  to.setDate(to.getDate() + 7);
  return { from, to };
}

function keyLabel(calendar) {
  if (calendar.kind !== "calcom") return "";
  if (calendar.api_key_source === "agent") return `own key …${calendar.api_key_last4 || ""}`;
  if (calendar.api_key_source === "global") return "global key";
  return "no key";
}

function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

// ---- agents ---------------------------------------------------------------------------------------

async function agentsPage(rest) {
  if (rest[0] === "new") return agentForm(null);
  if (rest[0]) return agentForm(rest[0]);
  const week = thisWeek();
  const [agents, bookings] = await Promise.all([
    loadAgents(),
    api("GET", `/v1/bookings?from=${encodeURIComponent(week.from.toISOString())}&to=${encodeURIComponent(week.to.toISOString())}&limit=1000`),
  ]);
  const booked = {};
  for (const b of (bookings.ok ? bookings.body.bookings : [])) {
    if (b.status === "confirmed") booked[b.agent_id] = (booked[b.agent_id] || 0) + 1;
  }
  view(
    h("h1", { text: "Agents" }),
    isAdmin() ? h("p", {}, h("a", { href: "#/agents/new", id: "new-agent", text: "+ New agent" })) : null,
    h("div", { class: "scroll" }, h("table", { class: "responsive", id: "agents" },
      h("thead", {}, h("tr", {}, ["Name", "Time zone", "Calendar", "Numbers", "Bookings this week"].map((t) => h("th", { text: t, title: t === "Bookings this week" ? "Confirmed appointments from Monday to Sunday" : null })))),
      h("tbody", {}, agents.map((a) => h("tr", { "data-agent": a.name },
        cell("Name", h("a", { href: `#/agents/${a.id}`, text: a.name })),
        cell("Time zone", a.timezone),
        cell("Calendar", a.calendar.kind, a.calendar.kind === "calcom" ? h("span", { class: "hint key-source", text: ` (${keyLabel(a.calendar)})` }) : null),
        cell("Numbers", a.numbers.join(", ") || "—"),
        cell("Bookings this week", String(booked[a.id] || 0)),
      ))),
    )),
  );
}

function field(label, name, input, hint) {
  input.setAttribute("name", name);
  input.id = `f-${name.replaceAll(".", "-")}`;
  return h("div", { class: "field" },
    h("label", { for: input.id, text: label }), input,
    hint ? h("p", { class: "hint", text: hint }) : null,
    h("p", { class: "error", "data-error-for": name, role: "alert" }));
}

async function agentForm(id) {
  await loadAgents();
  let agent = null;
  if (id) {
    const result = await api("GET", `/v1/agents/${encodeURIComponent(id)}`);
    if (!result.ok) return view(h("p", { class: "error", text: errorText(result) }));
    agent = result.body;
  }
  const cal = agent ? agent.calendar : { kind: "calcom", slot_minutes: 30 };
  const readOnly = !isAdmin();
  const input = (type, value, extra = {}) => h("input", { type, value: value ?? "", disabled: readOnly, ...extra });
  const area = (value) => { const t = h("textarea", { disabled: readOnly }); t.value = value ?? ""; return t; };
  const rules = cal.rules || {};
  const kind = h("select", { disabled: readOnly },
    ["calcom", "builtin", "demo"].map((k) => h("option", { value: k, selected: k === cal.kind, text: { calcom: "Cal.com", builtin: "Built-in calendar", demo: "Demo calendar" }[k] })));
  const keyHint = agent && cal.kind === "calcom"
    ? (cal.api_key_source === "agent" ? `Stored key ends in …${cal.api_key_last4}. Type a new key to replace it; leave empty to keep it.`
      : cal.api_key_source === "global" ? "Uses the global key (calcom.api_key). Type a key to give this agent its own." : "No key.")
    : "Your Cal.com API key (cal_live_…). It is stored encrypted and never shown again.";
  const calcom = h("fieldset", { id: "calcom-section" }, h("legend", { text: "Cal.com integration" }),
    field("API key", "calendar.api_key", input("password", "", { autocomplete: "off", placeholder: agent && cal.api_key_last4 ? `…${cal.api_key_last4}` : "" }), keyHint),
    h("p", { class: "hint key-source", id: "key-source", text: agent ? keyLabel(cal) : "" }),
    agent && cal.api_key_source === "agent" && !readOnly
      ? h("label", { class: "check" }, h("input", { type: "checkbox", name: "calendar.use_global_key", id: "f-calendar-use_global_key" }), " Forget this key and use the global key (calcom.api_key)")
      : null,
    h("p", { class: "error", "data-error-for": "calendar.use_global_key", role: "alert" }),
    field("Event type slug", "calendar.event_type_slug", input("text", cal.event_type_slug), "Created with the slot length when missing."),
    field("Slot length (minutes)", "calendar.slot_minutes", input("number", cal.slot_minutes, { min: 5, max: 480 })));
  const builtin = h("fieldset", { id: "builtin-section" }, h("legend", { text: "Built-in calendar" }),
    field("Slot length (minutes)", "builtin.slot_minutes", input("number", cal.slot_minutes, { min: 5, max: 480 })),
    field("Working hours (JSON)", "calendar.rules.working_hours", area(JSON.stringify(rules.working_hours || { mon: [["09:00", "17:00"]], tue: [["09:00", "17:00"]], wed: [["09:00", "17:00"]], thu: [["09:00", "17:00"]], fri: [["09:00", "17:00"]] })), "Per weekday, a list of [\"HH:MM\", \"HH:MM\"] ranges."),
    field("Buffer before (minutes)", "calendar.rules.buffer_before_minutes", input("number", rules.buffer_before_minutes ?? 0, { min: 0 })),
    field("Buffer after (minutes)", "calendar.rules.buffer_after_minutes", input("number", rules.buffer_after_minutes ?? 0, { min: 0 })),
    field("Minimum notice (minutes)", "calendar.rules.minimum_notice_minutes", input("number", rules.minimum_notice_minutes ?? 60, { min: 0 })),
    field("Horizon (days)", "calendar.rules.horizon_days", input("number", rules.horizon_days ?? 60, { min: 1 })));
  const demo = h("fieldset", { id: "demo-section" }, h("legend", { text: "Demo calendar" }),
    h("p", { class: "hint", text: "30-minute slots, 09:00–18:00 Monday to Friday, with reproducible random availability. Bookings are stored." }));
  const showSections = () => {
    calcom.hidden = kind.value !== "calcom";
    builtin.hidden = kind.value !== "builtin";
    demo.hidden = kind.value !== "demo";
  };
  kind.addEventListener("change", showSections);
  const formError = h("p", { class: "error", id: "form-error", role: "alert" });
  const notice = h("p", { class: "notice", id: "form-notice", role: "status" });
  const form = h("form", { class: "card", id: "agent-form", novalidate: true },
    h("fieldset", {}, h("legend", { text: "Basic information" }),
      field("Name", "name", input("text", agent && agent.name, { required: true })),
      field("Description", "description", area(agent && agent.description)),
      field("Prompt", "prompt", area(agent ? agent.prompt : ""), agent ? null : "Leave empty for the default scheduling receptionist."),
      field("Greeting", "greeting", input("text", agent && agent.greeting), agent ? null : "Leave empty for the default greeting."),
      field("Language", "language", input("text", agent ? agent.language : "en")),
      field("Time zone", "timezone", input("text", agent ? agent.timezone : "", { placeholder: "America/New_York", required: true }), "IANA name; the agent speaks and books in it."),
      field("Calendar", "calendar.kind", kind)),
    calcom, builtin, demo, formError, notice,
    readOnly ? null : h("div", { class: "actions" },
      h("button", { type: "submit", id: "save-agent", text: agent ? "Save" : "Create agent" }),
      agent ? h("button", { type: "button", class: "danger", id: "delete-agent", text: "Delete…", onclick: () => confirmDelete(agent, form) }) : null));
  showSections();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    notice.textContent = "";
    const value = (name) => form.elements[name].value;
    const body = {
      name: value("name"), description: value("description"), timezone: value("timezone").trim(),
      language: value("language").trim() || "en",
    };
    if (value("prompt").trim()) body.prompt = value("prompt");
    if (value("greeting").trim()) body.greeting = value("greeting");
    const calendar = { kind: kind.value };
    if (kind.value === "calcom") {
      if (value("calendar.api_key").trim()) calendar.api_key = value("calendar.api_key").trim();
      if (form.elements["calendar.use_global_key"] && form.elements["calendar.use_global_key"].checked) calendar.use_global_key = true;
      calendar.event_type_slug = value("calendar.event_type_slug").trim();
      calendar.slot_minutes = Number(value("calendar.slot_minutes"));
    } else if (kind.value === "builtin") {
      calendar.slot_minutes = Number(value("builtin.slot_minutes"));
      let hours;
      try { hours = JSON.parse(value("calendar.rules.working_hours")); } catch {
        return showError(form, "calendar.rules.working_hours", "is not valid JSON");
      }
      // Blocked ranges have no fields here: the stored ones are kept.
      calendar.rules = {
        ...(cal.kind === "builtin" && cal.rules ? cal.rules : {}),
        working_hours: hours,
        buffer_before_minutes: Number(value("calendar.rules.buffer_before_minutes")),
        buffer_after_minutes: Number(value("calendar.rules.buffer_after_minutes")),
        minimum_notice_minutes: Number(value("calendar.rules.minimum_notice_minutes")),
        horizon_days: Number(value("calendar.rules.horizon_days")),
      };
    }
    body.calendar = calendar;
    const result = agent ? await api("PATCH", `/v1/agents/${agent.id}`, body) : await api("POST", "/v1/agents", body);
    if (result.ok) {
      if (agent) {
        await agentForm(result.body.id);
        $("#form-notice").textContent = "Saved.";
      } else {
        location.hash = `#/agents/${result.body.id}`;
      }
      return;
    }
    const error = result.body && result.body.error;
    if (error && error.field) showError(form, kind.value === "builtin" && error.field === "calendar.slot_minutes" ? "builtin.slot_minutes" : error.field, error.message);
    else formError.textContent = errorText(result);
  });
  view(h("p", {}, h("a", { href: "#/agents", text: "← All agents" })),
    h("h1", { text: agent ? agent.name : "New agent" }),
    agent && agent.numbers.length ? h("p", { class: "hint", text: `Answers ${agent.numbers.join(", ")}` }) : null,
    form);
}

function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const formError = form.querySelector("#form-error");
  if (formError) formError.textContent = "";
}

function showError(form, fieldName, message) {
  // The API names nested fields (`calendar.rules.working_hours.mon`): show it at the nearest field.
  let name = fieldName;
  while (name && !form.querySelector(`[data-error-for="${CSS.escape(name)}"]`)) name = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : "";
  const slot = name && form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!slot) {
    form.querySelector("#form-error").textContent = `${fieldName}: ${message}`;
    return;
  }
  slot.textContent = message;
  const control = form.elements[name];
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
}

function confirmDelete(agent, form) {
  const box = h("div", { class: "card", id: "confirm-delete", role: "alertdialog" },
    h("p", { text: `Delete ${agent.name}? Its bookings and calls stay, without the agent.` }),
    agent.numbers.length ? h("p", { class: "error", text: `It answers ${agent.numbers.join(", ")}; those numbers are deleted too.` }) : null,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", id: "confirm-delete-yes", text: "Delete", onclick: async () => {
        const result = await api("DELETE", `/v1/agents/${agent.id}?force=${agent.numbers.length > 0}`);
        if (result.ok) location.hash = "#/agents";
        else box.replaceChildren(h("p", { class: "error", text: errorText(result) }));
      } }),
      h("button", { type: "button", class: "secondary", text: "Keep", onclick: () => box.remove() })));
  form.after(box);
}

// ---- numbers --------------------------------------------------------------------------------------

async function numbersPage() {
  await loadAgents();
  const result = await api("GET", "/v1/numbers");
  const numbers = result.ok ? result.body.numbers : [];
  const message = h("p", { class: "error", id: "numbers-message", role: "alert" });
  const map = async (raw, agentId, confirmed) => {
    message.textContent = "";
    message.className = "error";
    if (!confirmed) {
      const existing = await api("GET", `/v1/numbers/${encodeURIComponent(raw)}`);
      if (existing.status === 422) {
        const slot = $("[data-error-for=e164]");
        if (slot) slot.textContent = errorText(existing);
        else message.textContent = errorText(existing);
        return;
      }
      if (existing.ok && existing.body.agent_id !== agentId) {
        message.replaceChildren(
          `${existing.body.e164} is already answered by ${agentName(existing.body.agent_id)}. Mapping it moves it to ${agentName(agentId)}; calls to it stop reaching ${agentName(existing.body.agent_id)}. `,
          h("button", { type: "button", id: "confirm-move", text: "Move it", onclick: () => map(raw, agentId, true) }));
        message.id = "numbers-message";
        return;
      }
    }
    const put = await api("PUT", `/v1/numbers/${encodeURIComponent(raw)}`, { agent_id: agentId });
    if (put.ok) return numbersPage().then(() => { $("#numbers-message").className = "notice"; $("#numbers-message").textContent = `${put.body.e164} → ${agentName(agentId)}`; });
    const slot = $("[data-error-for=e164]");
    const error = put.body && put.body.error;
    if (error && error.field === "e164" && slot) slot.textContent = error.message;
    else message.textContent = errorText(put);
  };
  const form = isAdmin() ? h("form", { class: "card", id: "number-form" },
    field("Phone number", "e164", h("input", { type: "tel", placeholder: "+1 (555) 010-0100", required: true }), "Any common notation; stored as E.164."),
    field("Agent", "agent_id", agentSelect({})),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "map-number", text: "Map number" }))) : null;
  if (form) form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    map(form.elements.e164.value.trim(), form.elements.agent_id.value, false);
  });
  view(h("h1", { text: "Numbers" }), form, message,
    h("div", { class: "scroll" }, h("table", { class: "responsive", id: "numbers" },
      h("thead", {}, h("tr", {}, ["Number", "Agent", isAdmin() ? "Change" : null].filter(Boolean).map((t) => h("th", { text: t })))),
      h("tbody", {}, numbers.map((n) => h("tr", { "data-number": n.e164 },
        cell("Number", n.e164),
        cell("Agent", agentName(n.agent_id)),
        isAdmin() ? cell("Change",
          agentSelect({ "aria-label": `Agent for ${n.e164}`, class: "move-to" }, { selected: n.agent_id }),
          h("button", { type: "button", class: "secondary", text: "Move", onclick: (e) => map(n.e164, e.target.parentElement.querySelector("select").value, true) }),
          h("button", { type: "button", class: "danger remove", text: "Remove", onclick: (e) => {
            e.target.replaceWith(h("button", { type: "button", class: "danger confirm-remove", text: `Stop answering ${n.e164}`, onclick: async () => {
              const del = await api("DELETE", `/v1/numbers/${encodeURIComponent(n.e164)}`);
              if (del.ok) numbersPage(); else message.textContent = errorText(del);
            } }));
          } })) : null))))));
}

// ---- bookings -------------------------------------------------------------------------------------

async function bookingsPage() {
  await loadAgents();
  const params = new URLSearchParams(sessionStorage.getItem("slotline.bookings-filter") || "");
  const filter = h("form", { class: "filters", id: "booking-filter" },
    h("label", {}, "Agent ", agentSelect({ name: "agent_id" }, { any: true, selected: params.get("agent_id") || "" })),
    h("label", {}, "Status ", h("select", { name: "status" }, ["", "confirmed", "cancelled", "rescheduled"].map((s) => h("option", { value: s, selected: s === (params.get("status") || ""), text: s || "Any" })))),
    h("label", {}, "From ", h("input", { type: "date", name: "from", value: params.get("from") || "" })),
    h("label", {}, "To ", h("input", { type: "date", name: "to", value: params.get("to") || "" })),
    h("button", { type: "submit", text: "Filter" }));
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["agent_id", "status", "from", "to"]) if (filter.elements[name].value) next.set(name, filter.elements[name].value);
    sessionStorage.setItem("slotline.bookings-filter", next.toString());
    bookingsPage();
  });
  const query = new URLSearchParams({ limit: "1000" });
  if (params.get("agent_id")) query.set("agent_id", params.get("agent_id"));
  if (params.get("from")) query.set("from", new Date(`${params.get("from")}T00:00:00`).toISOString());
  if (params.get("to")) { const to = new Date(`${params.get("to")}T00:00:00`); to.setDate(to.getDate() + 1); query.set("to", to.toISOString()); }
  const result = await api("GET", `/v1/bookings?${query}`);
  const message = h("p", { class: "error", id: "bookings-message", role: "alert" });
  if (!result.ok) message.textContent = errorText(result);
  const bookings = (result.ok ? result.body.bookings : []).filter((b) => !params.get("status") || b.status === params.get("status"));
  const tz = (id) => (agentsCache.find((a) => a.id === id) || {}).timezone;
  view(h("h1", { text: "Bookings" }), filter, message,
    h("div", { class: "scroll" }, h("table", { class: "responsive", id: "bookings" },
      h("thead", {}, h("tr", {}, ["When (agent's time)", "Agent", "Attendee", "Status", "Calendar", isAdmin() ? "" : null].filter((t) => t !== null).map((t) => h("th", { text: t })))),
      h("tbody", {}, bookings.map((b) => h("tr", { "data-booking": b.id, "data-status": b.status },
        cell("When", when(b.start_at, tz(b.agent_id))),
        cell("Agent", agentName(b.agent_id)),
        cell("Attendee", [b.attendee_name, b.attendee_email, b.attendee_phone].filter(Boolean).join(" · ")),
        cell("Status", h("span", { class: "status", text: b.status })),
        cell("Calendar", b.calendar_kind),
        isAdmin() ? cell("", b.status === "confirmed" ? h("button", { type: "button", class: "danger cancel-booking", text: "Cancel…", onclick: (e) => {
          e.target.replaceWith(h("button", { type: "button", class: "danger confirm-cancel", text: "Cancel this booking", onclick: async () => {
            const cancel = await api("POST", `/v1/bookings/${b.id}/cancel`, { reason: "cancelled in the console" });
            if (cancel.ok) bookingsPage(); else message.textContent = errorText(cancel);
          } }));
        } }) : null) : null))),
      bookings.length ? null : h("caption", { text: "No bookings match." }))));
}

// ---- calls ----------------------------------------------------------------------------------------

function duration(call) {
  if (!call.answered_at || !call.ended_at) return "—";
  const seconds = Math.round((new Date(call.ended_at) - new Date(call.answered_at)) / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function outcome(call) {
  if (!call.ended_at) return "in progress";
  return call.end_reason || (call.sip_status ? `SIP ${call.sip_status}` : "ended");
}

function plot(series, days) {
  const width = 280, height = 90, pad = 14;
  const max = Math.max(1, ...series.calls, ...series.bookings);
  const step = (width - 2) / days.length;
  const bar = Math.max(1, step / 2 - 1);
  const y = (n) => height - pad - (n / max) * (height - pad - 4);
  const bars = days.flatMap((day, i) => [
    svg("rect", { class: "calls", x: 1 + i * step, y: y(series.calls[i]), width: bar, height: height - pad - y(series.calls[i]) }, svg("title", {}, `${day}: ${series.calls[i]} calls`)),
    svg("rect", { class: "bookings", x: 1 + i * step + bar, y: y(series.bookings[i]), width: bar, height: height - pad - y(series.bookings[i]) }, svg("title", {}, `${day}: ${series.bookings[i]} bookings`)),
  ]);
  const total = (list) => list.reduce((a, b) => a + b, 0);
  return h("figure", { class: "plot", "data-agent": series.agent_name },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${series.agent_name}: calls and bookings per day` },
      svg("line", { x1: 0, y1: height - pad, x2: width, y2: height - pad, stroke: "#c4c9d3" }),
      bars,
      svg("text", { x: 0, y: height - 2, "font-size": 9, fill: "#5d6677" }, days[0]),
      svg("text", { x: width, y: height - 2, "font-size": 9, fill: "#5d6677", "text-anchor": "end" }, days[days.length - 1]),
      svg("text", { x: 0, y: 9, "font-size": 9, fill: "#5d6677" }, `max ${max}`)),
    h("figcaption", {}, h("strong", { text: series.agent_name }), " ",
      h("span", { class: "legend" }, h("span", { class: "calls", text: `${total(series.calls)} calls ` }), h("span", { class: "bookings", text: `${total(series.bookings)} bookings` }))));
}

async function callsPage(rest) {
  await loadAgents();
  if (rest[0]) return transcriptPage(rest[0]);
  const [calls, stats] = await Promise.all([api("GET", "/v1/calls?limit=200"), api("GET", "/v1/stats/daily?days=14")]);
  view(h("h1", { text: "Calls" }),
    h("h2", { text: "Calls and bookings per day (last 14 days, UTC)" }),
    stats.ok ? h("div", { class: "plots", id: "plots" }, stats.body.agents.map((s) => plot(s, stats.body.days))) : h("p", { class: "error", text: errorText(stats) }),
    h("h2", { text: "Recent calls" }),
    h("div", { class: "scroll" }, h("table", { class: "responsive", id: "calls" },
      h("thead", {}, h("tr", {}, ["Started", "Agent", "Way in", "Caller", "Dialed", "Duration", "Outcome", ""].map((t) => h("th", { text: t })))),
      h("tbody", {}, (calls.ok ? calls.body.calls : []).map((c) => h("tr", { "data-call": c.id },
        cell("Started", when(c.started_at)),
        cell("Agent", agentName(c.agent_id)),
        cell("Way in", c.room ? "livekit" : `sip/${c.transport}`),
        cell("Caller", c.caller),
        cell("Dialed", c.dialed),
        cell("Duration", duration(c)),
        cell("Outcome", outcome(c)),
        cell("", h("a", { href: `#/calls/${c.id}`, class: "transcript-link", text: "Transcript" }))))))));
}

async function transcriptPage(id) {
  const result = await api("GET", `/v1/calls/${encodeURIComponent(id)}/transcript`);
  if (!result.ok) return view(h("p", {}, h("a", { href: "#/calls", text: "← Calls" })), h("p", { class: "error", text: errorText(result) }));
  const { call, lines } = result.body;
  view(h("p", {}, h("a", { href: "#/calls", text: "← Calls" })),
    h("h1", { text: `Call from ${call.caller} to ${call.dialed}` }),
    h("p", { class: "hint", text: `${when(call.started_at)} · ${agentName(call.agent_id)} · ${duration(call)} · ${outcome(call)}` }),
    lines.length ? h("div", { class: "card transcript", id: "transcript" }, lines.map((l) => h("p", { class: l.speaker }, h("strong", { text: `${l.speaker}: ` }), l.text)))
      : h("p", { class: "hint", text: "No transcript was kept for this call (voice.transcripts)." }));
}

// ---- try the agent --------------------------------------------------------------------------------

async function chatPage() {
  await loadAgents();
  if (!isAdmin()) {
    return view(h("h1", { text: "Try the agent" }), h("p", { class: "hint", text: "Chats can book and cancel, so they need an admin token." }));
  }
  let chatId = null;
  const log = h("div", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const agent = agentSelect({ id: "chat-agent" });
  const text = h("input", { type: "text", id: "chat-text", placeholder: "I'd like to book an appointment", autocomplete: "off", disabled: true });
  const send = h("button", { type: "submit", id: "chat-send", text: "Send", disabled: true });
  const status = h("p", { class: "hint", id: "chat-status" });
  const show = (reply) => {
    for (const tool of reply.tool_calls) log.append(h("p", { class: "tool", text: `${tool.name}(${JSON.stringify(tool.arguments)}) → ${tool.outcome}` }));
    for (const sentence of reply.say) log.append(h("p", { class: "agent", text: sentence }));
    if (reply.ended) {
      log.append(h("p", { class: "hint", text: "(the agent hung up)" }));
      chatId = null;
      text.disabled = send.disabled = true;
    }
    log.scrollTop = log.scrollHeight;
  };
  const start = h("button", { type: "button", id: "chat-start", text: "Start chat", onclick: async () => {
    if (chatId) await api("DELETE", `/v1/chats/${chatId}`);
    log.replaceChildren();
    const result = await api("POST", `/v1/agents/${agent.value}/chats`, {});
    if (!result.ok) { status.textContent = errorText(result); return; }
    chatId = result.body.chat_id;
    status.textContent = `Talking to ${agentName(agent.value)}: bookings made here are real.`;
    text.disabled = send.disabled = false;
    show(result.body);
    text.focus();
  } });
  const form = h("form", { class: "actions", id: "chat-form" }, text, send);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chatId) return;
    const said = text.value;
    text.value = "";
    log.append(h("p", { class: "you", text: said || "(silence)" }));
    send.disabled = true;
    const result = await api("POST", `/v1/chats/${chatId}/turns`, { text: said });
    send.disabled = false;
    if (result.ok) show(result.body);
    else { status.textContent = errorText(result); if (result.status === 404) { chatId = null; text.disabled = send.disabled = true; } }
    text.focus();
  });
  view(h("h1", { text: "Try the agent" }),
    h("p", { class: "hint", text: "A text conversation through the same dialog engine, tools and calendar as a phone call." }),
    h("div", { class: "filters" }, h("label", {}, "Agent ", agent), start), status, log, form);
}

// ---- start ----------------------------------------------------------------------------------------

$("#sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("#token").value.trim();
  if (token) signIn(token);
});
$("#sign-out").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved); else showSignIn();
