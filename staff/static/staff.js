/* Keeps the open chat and the inbox current without reloading the page.
 * Everything from the server is inserted with textContent, never as HTML:
 * citizens' messages are untrusted text. */
"use strict";

(function () {
  var CHAT_POLL_MS = 3000;
  var INBOX_POLL_MS = 10000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); }
        if (!response.ok) {
          var error = new Error("HTTP " + response.status);
          error.status = response.status;
          throw error;
        }
        return response.json();
      });
  }

  function messageItem(m) {
    var li = el("li", "msg " + (m.direction === "in" ? "in" : "out") +
      (m.author.indexOf("Petugas") === 0 ? " human" : ""));
    li.dataset.id = m.id;
    var meta = m.author + " · " + m.at + " · " + m.channel;
    if (m.fell_back_to_sms) { meta += " · dikirim lewat SMS (WhatsApp > 24 jam)"; }
    if (m.via_template) { meta += " · WhatsApp template (WhatsApp > 24 jam)"; }
    if (m.status === "held") { meta += " · menunggu warga membalas"; }
    if (m.status === "failed" || m.status === "undelivered") {
      meta += " · gagal" + (m.error_code ? " (" + m.error_code + ")" : "");
    }
    if (m.status === "opted_out") { meta += " · tidak dikirim: warga sudah STOP"; }
    li.appendChild(el("div", "meta", meta));
    li.appendChild(el("div", "body", m.body));
    (m.media || []).forEach(function (item) {
      // Links to our own copies only (a path on this site); without one, the label.
      if (!item.url || item.url.charAt(0) !== "/" || item.url.charAt(1) === "/") {
        li.appendChild(el("span", "media", item.label));
        return;
      }
      var a = el("a", "media", item.label);
      a.href = item.url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      li.appendChild(a);
    });
    return li;
  }

  /* The poll URL carries a signed token from the (audited) page view; the server
   * serves only lines newer than that view. It refuses (403) once the token is a
   * working day old or access was withdrawn: only a reload, audited again, goes on. */
  function pollTranscript(list) {
    var after = Number(list.dataset.after || 0);
    var base = list.dataset.pollUrl;
    var status = document.getElementById("chat-status");
    function tick() {
      getJson(base + (base.indexOf("?") < 0 ? "?" : "&") + "after=" + after).then(function (data) {
        data.messages.forEach(function (m) {
          if (!list.querySelector('[data-id="' + m.id + '"]')) { list.appendChild(messageItem(m)); }
          after = Math.max(after, m.id);
        });
        if (status) { status.textContent = data.status_label; }
        return true;
      }).catch(function (error) {
        if (error && error.status === 403) {
          list.parentNode.insertBefore(el("p", "flash warning",
            "Pembaruan otomatis berhenti. Muat ulang halaman untuk melihat pesan baru."), list.nextSibling);
          return false;
        }
        return true; /* offline for a moment: try again next tick */
      }).then(function (again) {
        if (again) { window.setTimeout(tick, CHAT_POLL_MS); }
      });
    }
    window.setTimeout(tick, CHAT_POLL_MS);
  }

  function inboxRow(item) {
    var tr = el("tr", item.urgent ? "urgent" : "");
    tr.appendChild(el("td", "", item.waiting));
    var who = el("td");
    var link = el("a", "", item.contact);
    link.href = item.url;
    who.appendChild(link);
    tr.appendChild(who);
    [item.channel, item.reason, item.status, item.assigned_to, item.region].forEach(function (v) {
      tr.appendChild(el("td", "", v));
    });
    tr.appendChild(el("td", "snippet", item.last_text));
    return tr;
  }

  function pollInbox(table) {
    var body = table.tBodies[0];
    function tick() {
      getJson(table.dataset.pollUrl).then(function (data) {
        var rows = document.createDocumentFragment();
        data.items.forEach(function (item) { rows.appendChild(inboxRow(item)); });
        if (!data.items.length) {
          var empty = el("tr", "empty");
          var cell = el("td", "", "Tidak ada percakapan yang menunggu.");
          cell.colSpan = 8;
          empty.appendChild(cell);
          rows.appendChild(empty);
        }
        body.replaceChildren(rows);
      }).catch(function () { /* try again next tick */ })
        .then(function () { window.setTimeout(tick, INBOX_POLL_MS); });
    }
    window.setTimeout(tick, INBOX_POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var transcript = document.getElementById("transcript");
    if (transcript) { pollTranscript(transcript); }
    var inbox = document.getElementById("inbox");
    if (inbox) { pollInbox(inbox); }
  });
}());
