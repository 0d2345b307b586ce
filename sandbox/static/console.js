/* Sandbox console: sidebar, message pane, App Home, modal overlay, user switcher and clock.
 * Everything the app shows comes from /sandbox/state; everything the user does goes to a
 * console route that sends the app the payload Slack would send. */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var ui = {
    user: window.localStorage.getItem("sandbox.user") || "",
    pane: null,            // {kind: "channel" | "dm" | "home", id}
    data: null,            // last /sandbox/state answer
    paneKey: "",           // what the pane shows, to re-render only on change
    modalKey: "",
    modalId: "",
    homeWait: null         // {hash, until}: the Home shown before app_home_opened answered
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // ------------------------------------------------------------------ server calls

  function post(path, body) {
    return fetch(path, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok || data.ok === false) {
          throw new Error(data.error || ("the app answered " + (data.status || r.status)));
        }
        return data;
      });
    });
  }

  function showBanner(id, message) {
    var b = $(id);
    b.textContent = message || "";
    b.hidden = !message;
  }

  function afterAction() {
    refresh();
    window.setTimeout(refresh, 400);  // the outbox delivers channel messages shortly after
  }

  function userName(id) {
    if (!ui.data) { return id; }
    var m = ui.data.members.filter(function (x) { return x.id === id; })[0];
    return m ? m.name : (id === ui.data.bot_user ? "prescreen-bot" : id);
  }

  function me() {
    return ui.data ? ui.data.members.filter(function (m) { return m.id === ui.user; })[0] : null;
  }

  // ------------------------------------------------------------------ the secure page

  // A link to the sandbox's own secure page opens it signed in as the member the console is
  // acting as (Sign in with Slack against the stand-in), on the page the link names.
  function secureHref(url) {
    var base = ui.data && ui.data.secure_base;
    if (!base || !ui.user) { return url; }
    var u, home;
    try { u = new URL(url, base); home = new URL(base); } catch (e) { return url; }
    if (u.origin !== home.origin) { return url; }
    if (u.pathname !== "/secure" && u.pathname.indexOf("/secure/") !== 0) { return url; }
    return home.origin + "/sandbox/secure?user=" + encodeURIComponent(ui.user) +
      "&next=" + encodeURIComponent(u.pathname + u.search);
  }

  BlockKit.setLinkHref(secureHref);

  // ------------------------------------------------------------------ polling

  function refresh() {
    if (!ui.user) { return Promise.resolve(); }
    return fetch("/sandbox/state?user=" + encodeURIComponent(ui.user))
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.ok === false) { throw new Error(data.error); }
        ui.data = data;
        render();
      })
      .catch(function (err) { showBanner("banner", "The sandbox is not answering: " + err.message); });
  }

  function boot() {
    fetch("/sandbox/state?user=" + encodeURIComponent(ui.user || "U0COORD01"))
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var ids = (data.members || []).map(function (m) { return m.id; });
        if (ids.indexOf(ui.user) < 0) { ui.user = ids[0]; }
        fillSwitcher(data.members || []);
        return refresh();
      });
    window.setInterval(refresh, POLL_MS);
  }

  function fillSwitcher(members) {
    var sel = $("user-switcher");
    sel.textContent = "";
    members.forEach(function (m) {
      var roles = Object.keys(m.roles || {}).map(function (k) { return k + " " + m.roles[k]; });
      var opt = el("option", null, m.name + (roles.length ? " — " + roles.join(", ") : ""));
      opt.value = m.id;
      sel.appendChild(opt);
    });
    sel.value = ui.user;
  }

  // ------------------------------------------------------------------ rendering

  function render() {
    var data = ui.data;
    $("secure-link").href = data.secure_base ? secureHref(data.secure_base + "/secure/")
      : "/sandbox/secure?user=" + encodeURIComponent(ui.user);
    showBanner("banner", "");
    renderClock(data);
    if (!ui.pane || !paneVisible(ui.pane)) {
      ui.pane = data.channels.length ? { kind: "channel", id: data.channels[0].id }
        : { kind: "dm", id: data.dm.id };
    }
    renderSidebar(data);
    if (ui.pane.kind === "home") { renderHome(data); } else { renderMessages(data); }
    renderModal(data);
  }

  function paneVisible(pane) {
    if (pane.kind === "home") { return true; }
    if (pane.kind === "dm") { return pane.id === ui.data.dm.id; }
    return ui.data.channels.some(function (c) { return c.id === pane.id; });
  }

  function renderClock(data) {
    var m = me();
    var tz = (m && m.timezone) || "UTC";
    var when = new Date(data.now);
    var text;
    try {
      text = new Intl.DateTimeFormat(undefined, {
        weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        timeZone: tz, timeZoneName: "short"
      }).format(when);
    } catch (e) {
      text = when.toISOString();
    }
    $("clock-now").textContent = text;
  }

  function navButton(label, pane, count) {
    var li = el("li");
    var b = el("button", "nav-item", label);
    b.type = "button";
    b.dataset.pane = pane.kind;
    b.dataset.id = pane.id || "";
    if (count) { b.appendChild(el("span", "count", String(count))); }
    if (ui.pane && ui.pane.kind === pane.kind && (ui.pane.id || "") === (pane.id || "")) {
      b.classList.add("active");
    }
    b.addEventListener("click", function () { openPane(pane); });
    li.appendChild(b);
    return li;
  }

  function roots(list) {
    return (list || []).filter(function (m) { return !m.thread_ts || m.thread_ts === m.ts; });
  }

  function renderSidebar(data) {
    var list = $("channel-list");
    list.textContent = "";
    data.channels.forEach(function (c) {
      list.appendChild(navButton("# " + c.name, { kind: "channel", id: c.id },
        roots(data.messages[c.id]).length));
    });
    var dms = $("dm-list");
    dms.textContent = "";
    dms.appendChild(navButton(data.dm.name, { kind: "dm", id: data.dm.id },
      roots(data.messages[data.dm.id]).length));
    $("nav-home").classList.toggle("active", ui.pane.kind === "home");
  }

  function openPane(pane) {
    ui.pane = pane;
    ui.paneKey = "";
    if (pane.kind === "home") {
      // Until the app publishes a fresh Home (app_home_opened), show it loading, not stale.
      ui.homeWait = { hash: ui.data && ui.data.home ? ui.data.home.hash : null, until: Date.now() + 3000 };
      post("/sandbox/home", { user: ui.user }).then(afterAction, function (err) {
        showBanner("banner", err.message);
      });
    }
    render();
  }

  function paneTitle(data) {
    if (ui.pane.kind === "home") { return ["prescreen-bot", "Home"]; }
    if (ui.pane.kind === "dm") { return [data.dm.name, "Direct message"]; }
    var c = data.channels.filter(function (x) { return x.id === ui.pane.id; })[0];
    return ["# " + (c ? c.name : ui.pane.id), "Study channel"];
  }

  function renderMessages(data) {
    var title = paneTitle(data);
    $("pane-title").textContent = title[0];
    $("pane-sub").textContent = title[1];
    $("home").hidden = true;
    $("messages").hidden = false;
    $("composer").hidden = false;
    $("composer-input").placeholder = "Message " + title[0] + " — type /prescreen help";
    var channel = ui.pane.id;
    var messages = data.messages[channel] || [];
    var ephemerals = (data.ephemerals || []).filter(function (e) { return e.channel === channel; });
    var key = JSON.stringify([channel, ui.user, messages, ephemerals]);
    if (key === ui.paneKey) { return; }
    ui.paneKey = key;
    var items = roots(messages).concat(ephemerals.map(function (e) {
      return Object.assign({ ephemeral: true }, e);
    }));
    items.sort(function (a, b) { return Number(a.ts) - Number(b.ts); });
    var box = $("messages");
    var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.textContent = "";
    if (!items.length) {
      box.appendChild(el("div", "empty", "Nothing here yet. Type /prescreen help below."));
    }
    items.forEach(function (m) {
      box.appendChild(messageNode(m, channel));
      var replies = messages.filter(function (r) { return r.thread_ts === m.ts && r.ts !== m.ts; });
      if (replies.length && !m.ephemeral) {
        var thread = el("div", "thread");
        replies.forEach(function (r) { thread.appendChild(messageNode(r, channel)); });
        box.appendChild(thread);
      }
    });
    if (atBottom || items.length < 8) { box.scrollTop = box.scrollHeight; }
  }

  function messageNode(m, channel) {
    var node = el("div", "msg" + (m.ephemeral ? " ephemeral" : ""));
    node.dataset.ts = m.ts;
    var author = m.bot_id || m.ephemeral ? "prescreen-bot" : userName(m.user);
    node.appendChild(el("div", "avatar", author.charAt(0).toUpperCase()));
    var main = el("div", "msg-main");
    var meta = el("div", "msg-meta");
    meta.appendChild(el("b", null, author));
    meta.appendChild(document.createTextNode(timeOf(m.ts)));
    if (m.edited) { meta.appendChild(document.createTextNode(" (edited)")); }
    if (m.ephemeral) { meta.appendChild(el("span", "only-you", " · Only visible to you")); }
    main.appendChild(meta);
    var body = el("div", "msg-body");
    var opts = {
      surface: "message", userName: userName,
      onAction: function (act) {
        send("/sandbox/action", Object.assign({ user: ui.user, channel: m.channel || channel, ts: m.ts }, act),
          "banner");
      }
    };
    if (m.blocks && m.blocks.length) {
      body.appendChild(BlockKit.render(m.blocks, opts));
    } else {
      body.appendChild(BlockKit.mrkdwn(m.text || "", userName));
    }
    (m.files || []).forEach(function (f) { body.appendChild(fileNode(f)); });
    main.appendChild(body);
    node.appendChild(main);
    return node;
  }

  function fileNode(f) {
    var href = "/sandbox/file?user=" + encodeURIComponent(ui.user) + "&id=" + encodeURIComponent(f.id);
    var box = el("div", "file");
    if (String(f.mimetype || "").indexOf("image/") === 0) {
      var img = el("img", "file-image");
      img.src = href;
      img.alt = String(f.title || f.name || "");
      box.appendChild(img);
    }
    var link = el("a", "file-link", "\uD83D\uDCCE " + (f.title || f.name || "file"));
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener";
    box.appendChild(link);
    return box;
  }

  // Message times in the current member's time zone, as Slack shows them.
  function timeOf(ts) {
    var d = new Date(Number(ts) * 1000);
    var m = me();
    try {
      return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit",
        timeZone: (m && m.timezone) || "UTC" });
    } catch (e) {
      return d.toLocaleTimeString();
    }
  }

  function renderHome(data) {
    $("pane-title").textContent = "prescreen-bot";
    $("pane-sub").textContent = "Home";
    $("messages").hidden = true;
    $("composer").hidden = true;
    var home = $("home");
    home.hidden = false;
    var key = JSON.stringify(["home", ui.user, data.home]);
    if (key === ui.paneKey) { return; }
    ui.paneKey = key;
    home.textContent = "";
    var waiting = ui.homeWait && Date.now() < ui.homeWait.until && data.home &&
      data.home.hash === ui.homeWait.hash;
    if (!data.home || waiting) {
      home.appendChild(el("div", "empty", "Loading your Home tab…"));
      ui.paneKey = "";
      return;
    }
    ui.homeWait = null;
    home.appendChild(BlockKit.render(data.home.blocks, {
      surface: "home", userName: userName,
      onAction: function (act) {
        send("/sandbox/action", Object.assign({ user: ui.user, view_id: data.home.id }, act), "banner");
      }
    }));
  }

  function renderModal(data) {
    var view = data.modal;
    var backdrop = $("modal-backdrop");
    if (!view) {
      backdrop.hidden = true;
      ui.modalKey = "";
      ui.modalId = "";
      return;
    }
    var key = JSON.stringify([view.id, view.hash, data.modal_errors]);
    if (key === ui.modalKey) { return; }
    var body = $("modal-body");
    var kept = view.id === ui.modalId ? BlockKit.collect(body) : {};
    ui.modalKey = key;
    ui.modalId = view.id;
    backdrop.hidden = false;
    showBanner("modal-error", "");
    $("modal-title").textContent = BlockKit.plain(view.title);
    $("modal-close").textContent = view.close ? BlockKit.plain(view.close) : "Cancel";
    var submit = $("modal-submit");
    submit.hidden = !view.submit;
    submit.textContent = view.submit ? BlockKit.plain(view.submit) : "Submit";
    body.textContent = "";
    body.appendChild(BlockKit.render(view.blocks, {
      surface: "modal", userName: userName, errors: data.modal_errors || {},
      onAction: function (act) {
        send("/sandbox/action", Object.assign({
          user: ui.user, view_id: view.id, values: BlockKit.collect(body)
        }, act), "modal-error");
      }
    }));
    BlockKit.restore(body, kept);
    var firstError = body.querySelector(".bk-error");
    if (firstError) { firstError.scrollIntoView({ block: "center" }); }
  }

  // ------------------------------------------------------------------ user actions

  function send(path, body, bannerId) {
    showBanner(bannerId, "");
    return post(path, body).then(function (answer) {
      var r = answer.response;
      if (r && typeof r === "object" && r.response_action === "errors") {
        ui.modalKey = "";  // show the inline errors with the user's input kept
      }
      afterAction();
      return answer;
    }, function (err) {
      showBanner(bannerId, err.message);
      afterAction();
    });
  }

  function submitModal() {
    var view = ui.data && ui.data.modal;
    if (!view) { return; }
    var body = $("modal-body");
    body.querySelectorAll(".bk-client-error").forEach(function (n) { n.remove(); });
    var missing = BlockKit.missingRequired(body);
    if (missing.length) {
      missing.forEach(function (blockId) {
        var node = body.querySelector('.bk-input-block[data-block-id="' + CSS.escape(blockId) + '"]');
        if (node) { node.appendChild(el("div", "bk-error bk-client-error", "Please complete this required field.")); }
      });
      body.querySelector(".bk-client-error").scrollIntoView({ block: "center" });
      return;
    }
    send("/sandbox/submit", { user: ui.user, view_id: view.id, values: BlockKit.collect(body) }, "modal-error");
  }

  function closeModal() {
    var view = ui.data && ui.data.modal;
    if (!view) { return; }
    send("/sandbox/close", { user: ui.user, view_id: view.id }, "modal-error");
  }

  function wire() {
    $("user-switcher").addEventListener("change", function (ev) {
      ui.user = ev.target.value;
      window.localStorage.setItem("sandbox.user", ui.user);
      ui.paneKey = "";
      ui.modalKey = "";
      ui.modalId = "";
      if (ui.pane && ui.pane.kind === "dm") { ui.pane = null; }
      refresh().then(function () {
        if (ui.pane && ui.pane.kind === "home") { openPane(ui.pane); }
      });
    });
    $("nav-home").addEventListener("click", function () { openPane({ kind: "home", id: "" }); });
    $("composer").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = $("composer-input");
      var text = input.value.trim();
      if (!text) { return; }
      send("/sandbox/command", { user: ui.user, channel: ui.pane.id, text: text }, "banner")
        .then(function (answer) { if (answer) { input.value = ""; } });
    });
    document.querySelectorAll(".clock-btn").forEach(function (b) {
      b.addEventListener("click", function () {
        b.disabled = true;
        send("/sandbox/clock", { minutes: Number(b.dataset.minutes) }, "banner")
          .then(function () { b.disabled = false; });
      });
    });
    $("modal-submit").addEventListener("click", submitModal);
    $("modal-close").addEventListener("click", closeModal);
    $("modal-x").addEventListener("click", closeModal);
  }

  wire();
  boot();
})();
