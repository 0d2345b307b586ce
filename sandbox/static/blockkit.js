/* Block Kit renderer for the sandbox console.
 *
 * Builds DOM nodes from the app's real Block Kit JSON. App text is only ever put in the page
 * with textContent, or, for mrkdwn, escaped first and then given a few known tags.
 *
 *   BlockKit.render(blocks, opts) -> DocumentFragment
 *     opts.surface   "message" | "modal" | "home"
 *     opts.onAction  function({block_id, action_id, type, value}) for buttons and dispatching
 *                    inputs (selects in sections/actions, inputs with dispatch_action)
 *     opts.errors    {block_id: message} shown under input blocks (response_action: errors)
 *     opts.userName  function(id) -> display name for <@U…> mentions
 *   BlockKit.collect(root) -> {block_id: {action_id: raw}} of the input blocks under root
 *   BlockKit.restore(root, values) puts collected values back after a re-render
 *   BlockKit.mrkdwn(text, userName) -> DocumentFragment
 *   BlockKit.setLinkHref(fn) fn(url) -> the href a link or URL button opens (default: url)
 *
 * Links and URL buttons open in a new tab, as in Slack; a URL button also sends its action.
 */
(function () {
  "use strict";

  var EMOJI = {
    white_check_mark: "\u2705", x: "\u274C", hourglass_flowing_sand: "\u23F3",
    outbox_tray: "\uD83D\uDCE4", telephone_receiver: "\uD83D\uDCDE", calendar: "\uD83D\uDCC6",
    date: "\uD83D\uDCC5", alarm_clock: "\u23F0", warning: "\u26A0\uFE0F", bell: "\uD83D\uDD14",
    microscope: "\uD83D\uDD2C", tada: "\uD83C\uDF89", no_entry: "\u26D4", no_entry_sign: "\uD83D\uDEAB",
    wave: "\uD83D\uDC4B", rotating_light: "\uD83D\uDEA8", memo: "\uD83D\uDCDD", clipboard: "\uD83D\uDCCB",
    hospital: "\uD83C\uDFE5", door: "\uD83D\uDEAA", leftwards_arrow_with_hook: "\u21A9\uFE0F",
    zzz: "\uD83D\uDCA4", inbox_tray: "\uD83D\uDCE5", busts_in_silhouette: "\uD83D\uDC65",
    bar_chart: "\uD83D\uDCCA", sunrise: "\uD83C\uDF05", heavy_check_mark: "\u2714\uFE0F",
    large_green_circle: "\uD83D\uDFE2", large_yellow_circle: "\uD83D\uDFE1", red_circle: "\uD83D\uDD34",
    mag: "\uD83D\uDD0D", lock: "\uD83D\uDD12", repeat: "\uD83D\uDD01", arrow_right: "\u27A1\uFE0F",
    information_source: "\u2139\uFE0F", stopwatch: "\u23F1\uFE0F", phone: "\u260E\uFE0F",
    hourglass: "\u231B", bust_in_silhouette: "\uD83D\uDC64", crescent_moon: "\uD83C\uDF19",
    grey_question: "\u2754", handshake: "\uD83E\uDD1D"
  };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function escapeHtml(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // Slack escapes &, < and > in message text; undo that before escaping for HTML.
  function unslack(s) {
    return String(s).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function emojify(s) {
    return s.replace(/:([a-z0-9_+-]+):/g, function (m, name) {
      return Object.prototype.hasOwnProperty.call(EMOJI, name) ? EMOJI[name] : m;
    });
  }

  // Formatting on text that is already HTML-escaped: the patterns only add tags.
  function formatEscaped(s) {
    return s
      .replace(/```([\s\S]+?)```/g, "<pre>$1</pre>")
      .replace(/`([^`\n]+)`/g, "<code>$1</code>")
      .replace(/(^|[\s(>~_])\*([^*\n]+)\*(?=$|[\s).,!?:;<~_])/g, "$1<b>$2</b>")
      .replace(/(^|[\s(>*~])_([^_\n]+)_(?=$|[\s).,!?:;<*~])/g, "$1<i>$2</i>")
      .replace(/(^|[\s(>*_])~([^~\n]+)~(?=$|[\s).,!?:;<*_])/g, "$1<s>$2</s>")
      .replace(/\n/g, "<br>");
  }

  function safeUrl(url) {
    return /^(https?:|mailto:)/i.test(url) ? url : null;
  }

  var linkHref = function (url) { return url; };

  function setLinkHref(fn) { linkHref = fn || function (url) { return url; }; }

  function tokenHtml(inner, userName) {
    var bar = inner.indexOf("|");
    var target = bar >= 0 ? inner.slice(0, bar) : inner;
    var label = bar >= 0 ? inner.slice(bar + 1) : null;
    if (target.charAt(0) === "@") {
      var name = userName ? userName(target.slice(1)) : target.slice(1);
      return '<span class="bk-mention">@' + escapeHtml(label || name) + "</span>";
    }
    if (target.charAt(0) === "#") {
      return '<span class="bk-mention">#' + escapeHtml(label || target.slice(1)) + "</span>";
    }
    if (target.charAt(0) === "!") {
      var special = target.slice(1).split("^")[0];
      if (special.indexOf("date") === 0 && label) { return escapeHtml(label); }
      return '<span class="bk-mention">@' + escapeHtml(label || special) + "</span>";
    }
    var url = safeUrl(unslack(target));
    if (!url) { return escapeHtml(unslack(label || target)); }
    return '<a href="' + escapeHtml(linkHref(url)) + '" target="_blank" rel="noopener noreferrer">' +
      escapeHtml(unslack(label || target)) + "</a>";
  }

  function mrkdwnHtml(text, userName) {
    var out = "";
    var re = /<([^<>]+)>/g;
    var last = 0;
    var m;
    var src = String(text || "");
    while ((m = re.exec(src)) !== null) {
      out += formatEscaped(emojify(escapeHtml(unslack(src.slice(last, m.index)))));
      out += tokenHtml(m[1], userName);
      last = re.lastIndex;
    }
    out += formatEscaped(emojify(escapeHtml(unslack(src.slice(last)))));
    return out;
  }

  function mrkdwn(text, userName) {
    var tpl = document.createElement("template");
    tpl.innerHTML = mrkdwnHtml(text, userName);  // escaped above; only known tags added
    return tpl.content;
  }

  function textNode(obj, opts, cls) {
    var span = el("span", cls || "bk-text");
    if (!obj) { return span; }
    if (obj.type === "mrkdwn") {
      span.appendChild(mrkdwn(obj.text, opts.userName));
    } else {
      span.textContent = emojify(String(obj.text || ""));
    }
    return span;
  }

  function plain(obj) {
    return obj ? emojify(String(obj.text || "")) : "";
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return (prefix || "bk") + "-" + uid; }

  function mark(node, blockId, el0, kind) {
    node.dataset.blockId = blockId;
    node.dataset.actionId = el0.action_id || "";
    node.dataset.kind = kind || el0.type;
  }

  function optionValue(o) { return o && o.value !== undefined ? String(o.value) : ""; }

  function allOptions(e) {
    var opts = (e.options || []).slice();
    (e.option_groups || []).forEach(function (g) { opts = opts.concat(g.options || []); });
    return opts;
  }

  // ------------------------------------------------------------------ elements

  function button(e, blockId, opts) {
    var url = e.url ? safeUrl(String(e.url)) : null;
    var b;
    if (url) {
      // A URL button: Slack opens the link in a new tab and still sends the action.
      b = el("a", "bk-btn bk-link-btn" + (e.style ? " bk-" + e.style : ""), plain(e.text));
      b.href = linkHref(url);
      b.target = "_blank";
      b.rel = "noopener noreferrer";
      b.title = url;
    } else {
      b = el("button", "bk-btn" + (e.style ? " bk-" + e.style : ""), plain(e.text));
      b.type = "button";
    }
    mark(b, blockId, e);
    b.addEventListener("click", function () {
      if (opts.onAction) {
        opts.onAction({ block_id: blockId, action_id: e.action_id, type: "button", value: e.value });
      }
    });
    return b;
  }

  function staticSelect(e, blockId, opts, dispatch, labelId) {
    var s = el("select", "bk-select");
    if (labelId) { s.id = labelId; }
    mark(s, blockId, e, "static_select");
    var ph = el("option", null, plain(e.placeholder) || "Select an item");
    ph.value = "";
    s.appendChild(ph);
    function addOption(parent, o) {
      var opt = el("option", null, plain(o.text));
      opt.value = optionValue(o);
      parent.appendChild(opt);
    }
    (e.options || []).forEach(function (o) { addOption(s, o); });
    (e.option_groups || []).forEach(function (g) {
      var group = el("optgroup");
      group.label = plain(g.label);
      (g.options || []).forEach(function (o) { addOption(group, o); });
      s.appendChild(group);
    });
    s.value = e.initial_option ? optionValue(e.initial_option) : "";
    if (dispatch) {
      s.addEventListener("change", function () {
        opts.onAction({ block_id: blockId, action_id: e.action_id, type: e.type, value: s.value || null });
      });
    }
    return s;
  }

  function choiceGroup(e, blockId, opts, dispatch, kind) {
    var box = el("div", "bk-choices");
    box.setAttribute("role", kind === "radio_buttons" ? "radiogroup" : "group");
    mark(box, blockId, e, kind);
    var name = nextId("choice");
    var initial = kind === "radio_buttons"
      ? [optionValue(e.initial_option)]
      : (e.initial_options || []).map(optionValue);
    allOptions(e).forEach(function (o) {
      var id = nextId("opt");
      var row = el("div", "bk-choice");
      var input = el("input");
      input.type = kind === "radio_buttons" ? "radio" : "checkbox";
      input.name = name;
      input.id = id;
      input.value = optionValue(o);
      input.checked = initial.indexOf(input.value) >= 0;
      var label = el("label");
      label.htmlFor = id;
      label.appendChild(textNode(o.text, opts));
      if (o.description) { label.appendChild(el("span", "bk-desc", plain(o.description))); }
      row.appendChild(input);
      row.appendChild(label);
      box.appendChild(row);
      if (dispatch) {
        input.addEventListener("change", function () {
          opts.onAction({ block_id: blockId, action_id: e.action_id, type: kind, value: readRaw(box) });
        });
      }
    });
    return box;
  }

  function textInput(e, blockId, opts, dispatch, labelId) {
    var input;
    if (e.type === "plain_text_input" && e.multiline) {
      input = el("textarea", "bk-input");
      input.rows = 3;
    } else {
      input = el("input", "bk-input");
      input.type = "text";
      if (e.type === "number_input") { input.inputMode = e.is_decimal_allowed ? "decimal" : "numeric"; }
    }
    if (labelId) { input.id = labelId; }
    mark(input, blockId, e);
    if (e.placeholder) { input.placeholder = plain(e.placeholder); }
    if (e.max_length) { input.maxLength = Number(e.max_length); }
    if (e.initial_value !== undefined) { input.value = String(e.initial_value); }
    if (dispatch) {
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && !ev.shiftKey) {
          ev.preventDefault();
          opts.onAction({ block_id: blockId, action_id: e.action_id, type: e.type, value: input.value });
        }
      });
    }
    return input;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function picker(e, blockId, opts, dispatch, labelId) {
    var input = el("input", "bk-input bk-picker");
    input.type = { datepicker: "date", timepicker: "time", datetimepicker: "datetime-local" }[e.type];
    if (labelId) { input.id = labelId; }
    mark(input, blockId, e);
    if (e.initial_date) { input.value = e.initial_date; }
    if (e.initial_time) { input.value = e.initial_time; }
    if (e.initial_date_time) {
      var d = new Date(Number(e.initial_date_time) * 1000);
      input.value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
        pad(d.getHours()) + ":" + pad(d.getMinutes());
    }
    if (dispatch) {
      input.addEventListener("change", function () {
        opts.onAction({ block_id: blockId, action_id: e.action_id, type: e.type, value: readRaw(input) });
      });
    }
    return input;
  }

  function image(e, cls) {
    var img = el("img", cls || "bk-image");
    var url = safeUrl(String(e.image_url || ""));
    if (url) { img.src = url; }
    img.alt = String(e.alt_text || "");
    return img;
  }

  function overflow(e, blockId, opts) {
    var s = el("select", "bk-select bk-overflow");
    mark(s, blockId, e, "overflow");
    var ph = el("option", null, "\u22EF");
    ph.value = "";
    s.appendChild(ph);
    (e.options || []).forEach(function (o) {
      var opt = el("option", null, plain(o.text));
      opt.value = optionValue(o);
      s.appendChild(opt);
    });
    s.addEventListener("change", function () {
      if (s.value) {
        opts.onAction({ block_id: blockId, action_id: e.action_id, type: "overflow", value: s.value });
      }
    });
    return s;
  }

  function element(e, blockId, opts, dispatch, labelId) {
    switch (e.type) {
      case "button": return button(e, blockId, opts);
      case "static_select": return staticSelect(e, blockId, opts, dispatch, labelId);
      case "radio_buttons":
      case "checkboxes": return choiceGroup(e, blockId, opts, dispatch, e.type);
      case "plain_text_input":
      case "number_input":
      case "email_text_input":
      case "url_text_input": return textInput(e, blockId, opts, dispatch, labelId);
      case "datepicker":
      case "timepicker":
      case "datetimepicker": return picker(e, blockId, opts, dispatch, labelId);
      case "image": return image(e, "bk-accessory-image");
      case "overflow": return overflow(e, blockId, opts);
      default: return el("span", "bk-unsupported", "[" + e.type + "]");
    }
  }

  // ------------------------------------------------------------------ blocks

  function section(b, opts) {
    var node = el("div", "bk-section");
    var body = el("div", "bk-section-body");
    if (b.text) { body.appendChild(textNode(b.text, opts)); }
    if (b.fields && b.fields.length) {
      var grid = el("div", "bk-fields");
      b.fields.forEach(function (f) { grid.appendChild(textNode(f, opts, "bk-field")); });
      body.appendChild(grid);
    }
    node.appendChild(body);
    if (b.accessory) {
      var acc = el("div", "bk-accessory");
      acc.appendChild(element(b.accessory, b.block_id, opts, true));
      node.appendChild(acc);
    }
    return node;
  }

  function inputBlock(b, opts) {
    var node = el("div", "bk-input-block");
    node.dataset.blockId = b.block_id;
    var id = nextId("in");
    var label = el("label", "bk-label", plain(b.label));
    label.htmlFor = id;
    if (b.optional) { label.appendChild(el("span", "bk-optional", " (optional)")); }
    node.appendChild(label);
    var e = b.element || {};
    node.appendChild(element(e, b.block_id, opts, !!b.dispatch_action, id));
    if (b.hint) { node.appendChild(el("div", "bk-hint", plain(b.hint))); }
    var err = opts.errors && opts.errors[b.block_id];
    if (err) {
      node.classList.add("bk-has-error");
      node.appendChild(el("div", "bk-error", err));
    }
    if (!b.optional) { node.dataset.required = "1"; }
    return node;
  }

  function block(b, opts) {
    var node;
    switch (b.type) {
      case "section": node = section(b, opts); break;
      case "header": node = el("h3", "bk-header", plain(b.text)); break;
      case "divider": node = el("hr", "bk-divider"); break;
      case "context":
        node = el("div", "bk-context");
        (b.elements || []).forEach(function (c) {
          node.appendChild(c.type === "image" ? image(c, "bk-context-image") : textNode(c, opts));
        });
        break;
      case "actions":
        node = el("div", "bk-actions");
        (b.elements || []).forEach(function (a) { node.appendChild(element(a, b.block_id, opts, true)); });
        break;
      case "input": node = inputBlock(b, opts); break;
      case "image":
        node = el("figure", "bk-image-block");
        if (b.title) { node.appendChild(el("figcaption", null, plain(b.title))); }
        node.appendChild(image(b));
        break;
      default:
        node = el("div", "bk-unsupported", "[" + b.type + " block]");
    }
    if (b.block_id) { node.dataset.blockId = b.block_id; }
    return node;
  }

  function render(blocks, opts) {
    var frag = document.createDocumentFragment();
    (blocks || []).forEach(function (b) { frag.appendChild(block(b, opts || {})); });
    return frag;
  }

  // ------------------------------------------------------------------ state

  function readRaw(node) {
    var kind = node.dataset.kind;
    if (kind === "radio_buttons") {
      var checked = node.querySelector("input:checked");
      return checked ? checked.value : null;
    }
    if (kind === "checkboxes") {
      return Array.prototype.map.call(node.querySelectorAll("input:checked"), function (i) { return i.value; });
    }
    if (kind === "datetimepicker") {
      return node.value ? Math.floor(new Date(node.value).getTime() / 1000) : null;
    }
    return node.value === "" ? null : node.value;
  }

  function writeRaw(node, raw) {
    var kind = node.dataset.kind;
    if (kind === "radio_buttons" || kind === "checkboxes") {
      var wanted = Array.isArray(raw) ? raw.map(String) : [String(raw)];
      node.querySelectorAll("input").forEach(function (i) { i.checked = wanted.indexOf(i.value) >= 0; });
    } else if (kind === "datetimepicker" && raw) {
      var d = new Date(Number(raw) * 1000);
      node.value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
        pad(d.getHours()) + ":" + pad(d.getMinutes());
    } else if (raw !== null && raw !== undefined) {
      node.value = raw;
    }
  }

  function inputNodes(root) {
    return root.querySelectorAll(".bk-input-block [data-action-id]");
  }

  function collect(root) {
    var out = {};
    inputNodes(root).forEach(function (node) {
      var b = node.dataset.blockId;
      out[b] = out[b] || {};
      out[b][node.dataset.actionId] = readRaw(node);
    });
    return out;
  }

  function restore(root, values) {
    inputNodes(root).forEach(function (node) {
      var byAction = values[node.dataset.blockId];
      if (byAction && Object.prototype.hasOwnProperty.call(byAction, node.dataset.actionId)) {
        var raw = byAction[node.dataset.actionId];
        if (raw !== null && !(Array.isArray(raw) && raw.length === 0)) { writeRaw(node, raw); }
      }
    });
  }

  function missingRequired(root) {
    var missing = [];
    root.querySelectorAll(".bk-input-block[data-required]").forEach(function (blockNode) {
      var node = blockNode.querySelector("[data-action-id]");
      if (!node) { return; }
      var raw = readRaw(node);
      if (raw === null || (Array.isArray(raw) && raw.length === 0)) { missing.push(blockNode.dataset.blockId); }
    });
    return missing;
  }

  window.BlockKit = {
    render: render, mrkdwn: mrkdwn, collect: collect, restore: restore,
    missingRequired: missingRequired, plain: plain, setLinkHref: setLinkHref
  };
})();
