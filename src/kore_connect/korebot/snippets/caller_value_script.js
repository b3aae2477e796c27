/*
 * kore-connect: a value the caller controls, made safe for a Service node. Adapt and paste into a
 * Script node before any Service node that uses such a value.
 *
 * Kore pastes a placeholder's value into a Service node's URL, headers and body as raw text. A
 * value the caller controls (a SIP header, an entity the caller spoke or typed) could then close
 * its JSON string and add keys the agent trusts ("isVip": "true"), or add a path and a query to
 * the URL. So before such a value reaches a Service node, either check it against exactly what it
 * may be, or escape it for where it goes:
 *   - an identifier: keep it only when it matches a strict pattern;
 *   - free text in a JSON body: JSON-escape it and place it between quotes in the body,
 *       "note": "{{context.session.BotUserSession.callerNoteJson}}"
 *   - a piece of a URL: percent-encode it with encodeURIComponent.
 * Line breaks never go into a header value.
 *
 * Plain ES5 script, no modules: it runs unchanged in Kore and in kore-connect's local twin.
 */
(function () {
  var CALLER_NOTE_HEADER = 'x-caller-note'; // an example: where the caller's value comes from
  var ACCOUNT = /^[0-9]{6,12}$/; // an example: what an account number may be

  function header(name) {
    var headers = (context.session.UserSession && context.session.UserSession.sipHeaders) || [];
    for (var i = 0; i < headers.length; i++) {
      if (headers[i] && String(headers[i].name).toLowerCase() === name) {
        return String(headers[i].value);
      }
    }
    return '';
  }

  // An identifier: kept only when it is one.
  var account = String(BotUserSession.get('accountNumber') || '');
  BotUserSession.put('accountNumber', ACCOUNT.test(account) ? account : '');

  // Free text: escaped for a JSON string, and for a URL.
  var note = header(CALLER_NOTE_HEADER).slice(0, 500);
  BotUserSession.put('callerNoteJson', JSON.stringify(note).slice(1, -1));
  BotUserSession.put('callerNoteUrl', encodeURIComponent(note));
})();
