// The approver console (README, Approver console). Plain DOM, no framework. Everything that comes from the API is
// rendered with textContent, never as HTML, so an argument such as <img src=x onerror=…> is only text,
// and through setText, which shows hidden and direction-changing characters (bidi overrides,
// zero-width…) as <U+XXXX> by the gateway's own rule (/console/visible-text.js), so what an approver
// reads is what runs.
(function () {
  'use strict';

  var TOKEN_KEY = 'agentGateway.approverToken';
  var REFRESH_MS = 10000;
  var HISTORY_PAGE = 50;

  var state = {
    view: 'pending',
    current: null,
    historyCursor: null,
    refreshTimer: null,
    tickTimer: null,
    // The approval ids of each list, in its order: j / k move through them.
    lists: { pending: [], history: [] },
    selected: { pending: null, history: null },
    // The previews this tab showed before a decision, by approval id: what was approved stays on view.
    previews: {},
    confirming: null,
  };

  /** What each audit event is about, for the cells' tooltips (the legend under the table says the same). */
  var EVENT_WORDS = {
    request: 'Refused before the policy was asked, or an approver reading approvals',
    decision: "The policy's answer, written before anything runs",
    approval: "An approver's decision",
    outcome: 'What happened when it ran, or why it did not',
    replay: 'A retry with the same request id, answered with the first answer',
  };

  function $(id) {
    return document.getElementById(id);
  }

  /** Text, never HTML, with hidden characters shown as <U+XXXX>. */
  function setText(node, text) {
    node.textContent = window.showHidden(text === undefined || text === null ? '' : String(text));
  }

  /** An element with text content (never HTML) and optional attributes and children. */
  function el(tag, text, attrs, children) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) setText(node, text);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function notice(text) {
    setText($('notice'), text || '');
  }

  /** "U+202E (right-to-left override) in argument content, line 2; …" */
  function describeHidden(characters) {
    return characters
      .map(function (c) {
        return c.character + ' (' + c.name + ')' + (c.count > 1 ? ' ×' + c.count : '') + ' in ' + c.where;
      })
      .join('; ');
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  function when(iso) {
    if (!iso) return '';
    var date = new Date(iso);
    return isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  function timeLeft(iso) {
    var ms = new Date(iso).getTime() - Date.now();
    if (!(ms > 0)) return 'expired';
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min ' + (s % 60) + ' s';
    return s + ' s';
  }

  /** One call to the gateway's API with the approver's token; resolves to { status, body }. */
  function api(method, path, body) {
    var headers = { Authorization: 'Bearer ' + token(), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch (e) {
          parsed = { error: 'The gateway answered something that is not JSON' };
        }
        if (response.status === 401) {
          signOut('The gateway did not accept the token (' + describeError(parsed) + '). Sign in again.');
          throw new Error('unauthenticated');
        }
        return { status: response.status, body: parsed };
      });
    });
  }

  function describeError(body) {
    if (!body) return 'no details';
    var text = body.error || body.status || 'error';
    return body.reason_code ? text + ', ' + body.reason_code : text;
  }

  function failed(what) {
    return function (err) {
      if (err && err.message === 'unauthenticated') return;
      notice(what + ': the gateway could not be reached.');
    };
  }

  // ---- session ----

  function signIn(event) {
    event.preventDefault();
    var value = $('token').value.trim();
    if (!value) {
      notice('Enter your approver token.');
      $('token').focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token').value = '';
    api('GET', '/api/approver')
      .then(function (answer) {
        if (answer.status !== 200) {
          signOut('Sign-in failed: ' + describeError(answer.body));
          return;
        }
        startSession(answer.body);
      })
      .catch(failed('Sign-in failed'));
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(state.refreshTimer);
    clearInterval(state.tickTimer);
    state.current = null;
    state.previews = {};
    showIdentity(null);
    show($('workspace'), false);
    show($('session'), false);
    show($('sign-in'), true);
    notice(message || 'Signed out.');
    $('token').focus();
  }

  /** "Signed in as alice", and what this approver may do. */
  function showIdentity(me) {
    setText($('session-label'), me ? 'Signed in as ' + me.approver_id : 'Signed in');
    var tools = !me ? '' : me.tools === null ? 'every tool' : me.tools.length > 0 ? me.tools.join(', ') : 'no tool';
    setText($('session-scope'), me ? 'May decide on ' + tools + '; ' + (me.audit ? 'may read' : 'may not read') + ' the audit log.' : '');
  }

  function loadIdentity() {
    api('GET', '/api/approver')
      .then(function (answer) {
        if (answer.status === 200) showIdentity(answer.body);
      })
      .catch(failed('Could not say who is signed in'));
  }

  function startSession(me) {
    if (me) showIdentity(me);
    else loadIdentity();
    show($('sign-in'), false);
    show($('session'), true);
    show($('workspace'), true);
    notice('');
    state.refreshTimer = setInterval(function () {
      if (state.view === 'pending' && !document.hidden) loadPending();
    }, REFRESH_MS);
    state.tickTimer = setInterval(updateTimeLeft, 1000);
    var wanted = approvalFromHash();
    if (wanted) {
      // Opened by a link: the pending list is loaded too, so j / k move on from this request.
      loadPending();
      openApproval(wanted);
    } else showView('pending');
  }

  // ---- views ----

  function showView(view) {
    state.view = view;
    state.current = null;
    cancelConfirm();
    show($('pending'), view === 'pending');
    show($('history'), view === 'history');
    show($('detail'), false);
    $('show-pending').setAttribute('aria-pressed', String(view === 'pending'));
    $('show-history').setAttribute('aria-pressed', String(view === 'history'));
    if (approvalFromHash()) window.history.replaceState(null, '', location.pathname);
    if (view === 'pending') loadPending();
    else loadHistory(false);
  }

  /** The table of a list view. */
  function tableOf(view) {
    return $(view === 'pending' ? 'pending-table' : 'history-table');
  }

  /** Marks the row of the selected approval (after a refresh too); `focus`: moves the keyboard focus to its Open button. */
  function markSelected(view, focus) {
    var rows = tableOf(view).querySelectorAll('tbody tr');
    for (var i = 0; i < rows.length; i++) {
      var selected = rows[i].getAttribute('data-approval') === state.selected[view];
      rows[i].classList.toggle('selected', selected);
      if (selected && focus) rows[i].querySelector('button').focus();
    }
  }

  function listRow(view, record, cells) {
    var row = el('tr', null, { 'data-approval': record.approval_id }, cells);
    state.lists[view].push(record.approval_id);
    return row;
  }

  function openButton(record) {
    var button = el('button', 'Open', { type: 'button' });
    button.appendChild(el('span', ' ' + record.tool + ' from ' + record.agent_id, { class: 'visually-hidden' }));
    button.addEventListener('click', function () {
      openApproval(record.approval_id);
    });
    return button;
  }

  function argumentsCell(record) {
    if (record.arguments === null) return el('td', '(omitted: ' + record.arguments_bytes + ' bytes)');
    var note = record.arguments_shown === 'summarized' ? ' (long text summarized)' : '';
    var cell = el('td', null, {}, [el('pre', json(record.arguments), { class: 'json' }), el('span', note, { class: 'hint' })]);
    if (record.hidden_characters && record.hidden_characters.length > 0) {
      cell.insertBefore(el('p', 'Hidden characters: ' + describeHidden(record.hidden_characters), { class: 'hidden-characters' }), cell.firstChild);
    }
    return cell;
  }

  function loadPending() {
    api('GET', '/api/approvals?status=pending&limit=100')
      .then(function (answer) {
        if (answer.status !== 200) return notice('Could not list pending approvals: ' + describeError(answer.body));
        var tbody = $('pending-table').querySelector('tbody');
        // A refresh keeps the selected row and, if it had it, the keyboard focus.
        var hadFocus = tbody.contains(document.activeElement);
        clear(tbody);
        state.lists.pending = [];
        var records = answer.body.approvals;
        records.forEach(function (record) {
          tbody.appendChild(
            listRow('pending', record, [
              el('td', record.agent_id),
              el('td', record.role),
              el('td', record.tool),
              el('td', when(record.created_at)),
              el('td', timeLeft(record.expires_at), { 'data-expires': record.expires_at }),
              argumentsCell(record),
              el('td', null, {}, [openButton(record)]),
            ]),
          );
        });
        setText($('pending-count'), '(' + records.length + (answer.body.next_cursor ? '+' : '') + ')');
        show($('pending-table'), records.length > 0);
        show($('pending-empty'), records.length === 0);
        setText($('pending-updated'), 'Updated ' + new Date().toLocaleTimeString() + '.');
        markSelected('pending', hadFocus && state.view === 'pending' && !$('pending').hidden);
      })
      .catch(failed('Could not list pending approvals'));
  }

  function updateTimeLeft() {
    var cells = document.querySelectorAll('[data-expires]');
    for (var i = 0; i < cells.length; i++) setText(cells[i], timeLeft(cells[i].getAttribute('data-expires')));
  }

  function loadHistory(more) {
    var status = $('history-status').value;
    var query = '?limit=' + HISTORY_PAGE + (status ? '&status=' + encodeURIComponent(status) : '');
    if (more && state.historyCursor) query += '&cursor=' + encodeURIComponent(state.historyCursor);
    api('GET', '/api/approvals' + query)
      .then(function (answer) {
        if (answer.status !== 200) return notice('Could not list approvals: ' + describeError(answer.body));
        var tbody = $('history-table').querySelector('tbody');
        if (!more) {
          clear(tbody);
          state.lists.history = [];
        }
        answer.body.approvals.forEach(function (record) {
          tbody.appendChild(
            listRow('history', record, [
              el('td', record.status),
              el('td', record.agent_id),
              el('td', record.tool),
              el('td', when(record.created_at)),
              el('td', record.decided_by || ''),
              el('td', when(record.decided_at)),
              el('td', null, {}, [openButton(record)]),
            ]),
          );
        });
        state.historyCursor = answer.body.next_cursor;
        var empty = tbody.childNodes.length === 0;
        show($('history-table'), !empty);
        show($('history-empty'), empty);
        show($('history-more'), Boolean(state.historyCursor));
        markSelected('history', false);
      })
      .catch(failed('Could not list approvals'));
  }

  // ---- one approval ----

  function field(list, name, value) {
    list.appendChild(el('dt', name));
    list.appendChild(el('dd', value === null || value === undefined || value === '' ? '-' : value));
  }

  function openApproval(id) {
    api('GET', '/api/approvals/' + encodeURIComponent(id))
      .then(function (answer) {
        if (answer.status !== 200) {
          notice('Could not open approval ' + id + ': ' + describeError(answer.body));
          if (!state.current) showView('pending');
          return;
        }
        var record = answer.body;
        state.current = record;
        state.selected[state.view] = record.approval_id;
        cancelConfirm();
        window.history.replaceState(null, '', '#approval=' + encodeURIComponent(record.approval_id));
        show($('pending'), false);
        show($('history'), false);
        show($('detail'), true);
        // Neither tab is the view on screen now; "Back to the list" returns to the one it came from.
        $('show-pending').setAttribute('aria-pressed', 'false');
        $('show-history').setAttribute('aria-pressed', 'false');
        var list = state.lists[state.view];
        var at = list.indexOf(record.approval_id);
        setText(
          $('detail-position'),
          at < 0 ? '' : at + 1 + ' of ' + list.length + ' in ' + (state.view === 'pending' ? 'Pending' : 'History') + ' (j / k: next / previous).',
        );
        renderRecord(record);
        show($('answer'), false);
        show($('audit-table'), false);
        show($('audit-note'), false);
        $('comment').value = '';
        var pending = record.status === 'pending';
        setText($('detail-arguments-title'), pending ? 'Arguments: exactly what will run' : 'Arguments: exactly what was asked');
        show($('decide-form'), pending);
        $('approve').disabled = !pending;
        $('reject').disabled = !pending;
        show($('preview-block'), false);
        show($('preview-none'), false);
        var seen = state.previews[record.approval_id];
        if (pending) loadPreview(record.approval_id);
        else if (seen) showPreview(seen, 'Preview, computed at ' + seen.at + ', before the decision');
        else show($('preview-none'), true);
        $('detail-title').focus();
      })
      .catch(failed('Could not open the approval'));
  }

  function renderRecord(record) {
    setText($('detail-title'), 'Approval: ' + record.tool + ' from ' + record.agent_id + ' (' + record.status + ')');
    var list = $('detail-fields');
    clear(list);
    field(list, 'Status', record.status);
    field(list, 'Approval id', record.approval_id);
    field(list, 'Agent', record.agent_id + ' (version ' + record.agent_version + ')');
    field(list, 'Role', record.role);
    field(list, 'Tool', record.tool);
    field(list, 'Request id', record.request_id);
    field(list, 'Asked', when(record.created_at));
    field(list, 'Expires', record.status === 'pending' ? when(record.expires_at) + ' (' + timeLeft(record.expires_at) + ' left)' : when(record.expires_at));
    field(list, 'Decided by', record.decided_by);
    field(list, 'Decided', when(record.decided_at));
    field(list, 'Comment', record.comment);
    field(list, 'Arguments SHA-256', record.arguments_sha256);
    var hidden = record.hidden_characters || [];
    setText(
      $('hidden-alert-text'),
      hidden.length > 0
        ? 'The arguments contain characters that are invisible or change the direction of the text around them, shown here as <U+XXXX>: ' +
            describeHidden(hidden) +
            '. What runs contains the characters themselves: check what each one does before approving.'
        : '',
    );
    show($('hidden-alert'), hidden.length > 0);
    setText($('detail-arguments'), record.arguments === null ? '(not shown: ' + record.arguments_bytes + ' bytes)' : json(record.arguments));
    if (record.result !== undefined) field(list, 'Result', json(record.result));
    if (record.error !== undefined) field(list, 'Error', json(record.error));
  }

  function loadPreview(id) {
    api('GET', '/api/approvals/' + encodeURIComponent(id) + '/preview')
      .then(function (answer) {
        if (!state.current || state.current.approval_id !== id) return;
        if (answer.status !== 200) {
          showPreview({ preview: { warnings: [{ code: 'preview_unavailable', message: 'No preview: ' + describeError(answer.body) }] } }, 'Preview');
          return;
        }
        var seen = { preview: answer.body, at: when(answer.body.computed_at) };
        state.previews[id] = seen;
        showPreview(seen, 'Preview, computed now (' + seen.at + ')');
      })
      .catch(failed('Could not load the preview'));
  }

  function showPreview(seen, title) {
    setText($('preview-title'), title);
    renderPreview(seen.preview);
    show($('preview-block'), true);
  }

  function summaryText(summary) {
    if (!summary) return null;
    return summary.size + ' bytes, SHA-256 ' + (summary.sha256 || 'not computed (too large)');
  }

  function renderPreview(preview) {
    var warnings = $('preview-warnings');
    clear(warnings);
    (preview.warnings || []).forEach(function (warning) {
      // Text that reads differently from what runs is the one warning an approver must not miss.
      var prominent = warning.code === 'hidden_characters';
      warnings.appendChild(
        el('li', null, prominent ? { class: 'hidden-characters', role: 'alert' } : {}, [
          el('strong', prominent ? 'Warning, hidden characters: ' : 'Warning: '),
          el('span', warning.message + ' [' + warning.code + ']'),
        ]),
      );
    });
    var list = $('preview-fields');
    clear(list);
    if (preview.kind) field(list, 'Kind', preview.kind);
    if (preview.path !== undefined) field(list, 'Path', preview.path);
    if (preview.exists !== undefined) field(list, 'Exists now', preview.exists ? 'yes' : 'no (a new file)');
    if (preview.current) field(list, 'Current file', summaryText(preview.current));
    if (preview.proposed) field(list, 'Proposed content', summaryText(preview.proposed));
    if (preview.size !== undefined) field(list, 'Size', preview.size + ' bytes');
    if (preview.sha256) field(list, 'SHA-256', preview.sha256);
    if (preview.method) field(list, 'Request', preview.method + ' ' + preview.url);
    if (preview.headers) {
      Object.keys(preview.headers).forEach(function (name) {
        field(list, 'Header ' + name, preview.headers[name]);
      });
    }
    if (preview.body_summary) field(list, 'Body', summaryText(preview.body_summary));
    if (preview.server) field(list, 'MCP server', preview.server);
    if (preview.upstream_tool) field(list, 'MCP tool', preview.upstream_tool);

    var diff = $('preview-diff');
    clear(diff);
    var hasDiff = typeof preview.diff === 'string';
    if (hasDiff) {
      preview.diff.split('\n').forEach(function (line) {
        var kind =
          line.indexOf('@@') === 0
            ? 'hunk'
            : line.indexOf('+++') === 0 || line.indexOf('---') === 0
              ? 'file'
              : line[0] === '+'
                ? 'add'
                : line[0] === '-'
                  ? 'del'
                  : 'same';
        diff.appendChild(el('span', line + '\n', { class: 'line ' + kind }));
      });
    }
    show(diff, hasDiff);
    show($('preview-legend'), hasDiff);

    var text = null;
    if (typeof preview.head === 'string') text = 'First lines:\n' + preview.head;
    else if (typeof preview.body === 'string') text = 'Body:\n' + preview.body;
    else if (preview.arguments) text = 'Arguments sent:\n' + json(preview.arguments);
    setText($('preview-text'), text || '');
    show($('preview-text'), text !== null);
  }

  /** What the API said to a decision, in words and as it answered. */
  function describeDecision(answer) {
    var body = answer.body || {};
    if (answer.status === 200 && body.status === 'executed') return 'Approved and executed.';
    if (answer.status === 200 && body.status === 'rejected') return 'Rejected. The agent will see status rejected.';
    if (answer.status === 409 && body.reason_code === 'already_decided' && /\(withdrawn\)/.test(body.error || ''))
      return 'Not applied: the agent withdrew this request before it was decided (it cancelled the task).';
    if (answer.status === 409 && body.reason_code === 'already_decided')
      return 'Not applied: this approval was already decided by someone else (' + body.error + ').';
    if (answer.status === 410) return 'Not applied: this approval expired before it was decided.';
    if (body.status === 'tool_error') return 'Approved, but the tool failed: ' + body.error;
    if (body.status === 'tool_timeout') return 'Approved, but the tool did not finish in time: ' + body.error;
    if (answer.status === 403) return 'Refused (' + describeError(body) + ').';
    return 'HTTP ' + answer.status + ': ' + describeError(body);
  }

  function decide(approved) {
    var record = state.current;
    if (!record) return;
    cancelConfirm();
    var comment = $('comment').value.trim();
    var decision = { approval_id: record.approval_id, approved: approved };
    if (comment) decision.comment = comment;
    $('approve').disabled = true;
    $('reject').disabled = true;
    api('POST', '/approve', decision)
      .then(function (answer) {
        setText($('answer-summary'), describeDecision(answer));
        setText($('answer-body'), 'HTTP ' + answer.status + '\n' + json(answer.body));
        show($('answer'), true);
        show($('decide-form'), false);
        // The preview stays: it is what the approver saw and decided on, and now says so.
        var seen = state.previews[record.approval_id];
        if (seen) setText($('preview-title'), 'Preview, computed at ' + seen.at + ', before the decision');
        $('answer-summary').focus();
        return api('GET', '/api/approvals/' + encodeURIComponent(record.approval_id)).then(function (after) {
          if (after.status === 200 && state.current && state.current.approval_id === record.approval_id) {
            state.current = after.body;
            renderRecord(after.body);
          }
        });
      })
      .catch(function (err) {
        $('approve').disabled = false;
        $('reject').disabled = false;
        failed('The decision was not sent')(err);
      });
  }

  function loadAudit() {
    var record = state.current;
    if (!record) return;
    var query = '?request_id=' + encodeURIComponent(record.request_id) + '&agent_id=' + encodeURIComponent(record.agent_id);
    api('GET', '/api/audit' + query)
      .then(function (answer) {
        var note = $('audit-note');
        if (answer.status === 403) {
          setText(note, 'This approver may not read the audit log (it needs audit: true in gateway.yaml). Ask an operator.');
          show(note, true);
          show($('audit-table'), false);
          return;
        }
        if (answer.status !== 200) {
          setText(note, 'Could not read the audit records: ' + describeError(answer.body));
          show(note, true);
          return;
        }
        var tbody = $('audit-table').querySelector('tbody');
        clear(tbody);
        answer.body.records.forEach(function (r) {
          tbody.appendChild(
            el('tr', null, {}, [
              el('td', when(r.ts)),
              el('td', r.event, EVENT_WORDS[r.event] ? { title: EVENT_WORDS[r.event] } : {}),
              el('td', r.decision || ''),
              el('td', (r.status || '') + (r.http_status ? ' (' + r.http_status + ')' : '')),
              el('td', r.reason_code || ''),
              el('td', r.approver_id || ''),
              el('td', r.channel || ''),
              el('td', r.audit_id),
            ]),
          );
        });
        setText(note, answer.body.records.length === 0 ? 'No audit records found for this request.' : answer.body.records.length + ' record(s), oldest first.');
        show(note, true);
        show($('audit-table'), answer.body.records.length > 0);
      })
      .catch(failed('Could not read the audit records'));
  }

  // ---- keyboard ----

  /** a / r: asks first, in the page (focus on Yes), for a decision by a single key press. */
  function askConfirm(approved) {
    var record = state.current;
    if (!record || $('decide-form').hidden || $('approve').disabled) return;
    state.confirming = approved;
    setText($('confirm-text'), (approved ? 'Approve and run ' : 'Reject ') + record.tool + ' from ' + record.agent_id + '?');
    setText($('confirm-yes'), approved ? 'Yes, approve and run' : 'Yes, reject');
    show($('confirm'), true);
    $('confirm-yes').focus();
  }

  function cancelConfirm() {
    var open = !$('confirm').hidden;
    state.confirming = null;
    show($('confirm'), false);
    return open;
  }

  function toggleHelp(visible) {
    var open = visible === undefined ? $('shortcuts').hidden : visible;
    show($('shortcuts'), open);
    $('show-help').setAttribute('aria-expanded', String(open));
    if (open) $('shortcuts-title').focus();
  }

  /** j / k: the next or previous row of a list, or in an open request, the next or previous request of its list. */
  function move(step) {
    var view = state.view;
    var list = state.lists[view];
    if (list.length === 0) return notice('The list is empty.');
    var at = list.indexOf(state.current ? state.current.approval_id : state.selected[view]);
    var next = at < 0 ? (step > 0 ? 0 : list.length - 1) : at + step;
    if (next < 0 || next >= list.length) return notice(next < 0 ? 'This is the first request of the list.' : 'This is the last request of the list.');
    notice('');
    state.selected[view] = list[next];
    if (state.current) openApproval(list[next]);
    else markSelected(view, true);
  }

  /** Where typing goes to a field, a key is text, never a shortcut. */
  function typing(target) {
    return Boolean(target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)));
  }

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if ($('workspace').hidden) return;
    var key = event.key;
    var inDetail = !$('detail').hidden;
    var handled = true;
    if (!$('confirm').hidden) {
      // Enter on the focused Yes button answers by itself.
      if (key === 'y') decide(state.confirming);
      else if (key === 'n' || key === 'Escape') {
        cancelConfirm();
        $('approve').focus();
      } else handled = false;
    } else if (key === '?') toggleHelp();
    else if (key === 'Escape') {
      if (!$('shortcuts').hidden) toggleHelp(false);
      else if (inDetail) showView(state.view);
      else handled = false;
    } else if (key === 'j' || (key === 'ArrowDown' && !inDetail)) move(1);
    else if (key === 'k' || (key === 'ArrowUp' && !inDetail)) move(-1);
    else if (key === 'o' && !inDetail && state.selected[state.view]) openApproval(state.selected[state.view]);
    else if (key === 'a' && inDetail) askConfirm(true);
    else if (key === 'r' && inDetail) askConfirm(false);
    else handled = false;
    if (handled) event.preventDefault();
  }

  function approvalFromHash() {
    var match = /^#approval=([A-Za-z0-9_.:-]{1,128})$/.exec(location.hash);
    return match ? match[1] : null;
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (typeof window.showHidden !== 'function') {
      // Without it, hidden characters would be drawn as the browser draws them: show nothing.
      $('notice').textContent = 'The console did not load completely (visible-text.js). Reload the page.';
      show($('sign-in'), false);
      return;
    }
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', function () {
      signOut('Signed out.');
    });
    $('show-pending').addEventListener('click', function () {
      showView('pending');
    });
    $('show-history').addEventListener('click', function () {
      showView('history');
    });
    $('history-form').addEventListener('submit', function (event) {
      event.preventDefault();
      loadHistory(false);
    });
    $('history-more').addEventListener('click', function () {
      loadHistory(true);
    });
    $('detail-back').addEventListener('click', function () {
      showView(state.view);
    });
    $('approve').addEventListener('click', function () {
      decide(true);
    });
    $('reject').addEventListener('click', function () {
      decide(false);
    });
    $('decide-form').addEventListener('submit', function (event) {
      event.preventDefault();
    });
    $('audit-load').addEventListener('click', loadAudit);
    $('confirm-yes').addEventListener('click', function () {
      decide(state.confirming);
    });
    $('confirm-no').addEventListener('click', function () {
      cancelConfirm();
      $('approve').focus();
    });
    $('show-help').addEventListener('click', function () {
      toggleHelp();
    });
    $('hide-help').addEventListener('click', function () {
      toggleHelp(false);
      $('show-help').focus();
    });
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', function () {
      var wanted = approvalFromHash();
      if (wanted && token() && (!state.current || state.current.approval_id !== wanted)) openApproval(wanted);
    });
    if (token()) startSession();
    else $('token').focus();
  });
})();
