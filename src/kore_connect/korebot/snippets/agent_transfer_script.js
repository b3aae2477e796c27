/*
 * kore-connect: Agent Transfer dialog, Script node.
 * Paste into: Bot Builder > the Agent Transfer dialog task > a Script node before the Service node.
 *
 * Finds the Amazon Connect contact ID in the SIP headers the Start Flow script kept
 * (context.session.UserSession.sipHeaders, an array of {name, value}) and stores it as
 * BotUserSession.ContactId, which the Service node puts in its URL. The header is
 * X-Amzn-ConnectContactId; its name is compared case-insensitively, as SIP requires
 * (RFC 3261 section 7.3.1). The value must be a UUID; it is stored in lower case, the form the
 * metadata store keys records by.
 *
 * Outcome, in BotUserSession.ContactIdStatus, for the connections out of this node:
 *   "found"           ContactId holds the contact ID;
 *   "no_sip_headers"  the session holds no SIP headers: is the Start Flow script in place?
 *   "missing"         no X-Amzn-ConnectContactId header: did the call come from Amazon Connect?
 *   "invalid"         the header's value is not a UUID.
 * On every outcome but "found", ContactId is set to "" so that a value left from earlier in
 * the session can never send this caller's metadata to another contact.
 *
 * Why a status and not a thrown Error: an error thrown in a Script node ends the dialog, and the
 * caller would never reach an agent. With a status, the node's connections choose the path:
 *   IF context.session.BotUserSession.ContactIdStatus equals "found" -> the Service node;
 *   ELSE -> straight to the Agent Transfer node (the caller reaches an agent without the metadata).
 * Every outcome is logged with koreDebugger.log. The log holds the contact ID (a correlation key,
 * also in the metadata store's logs) and never another header's value or the bot's metadata.
 *
 * Plain ES5 script, no modules: it runs unchanged in Kore and in kore-connect's local twin.
 */
(function () {
  var HEADER = 'x-amzn-connectcontactid';
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  var PREFIX = 'kore-connect agent transfer: ';

  function log(message) {
    if (typeof koreDebugger !== 'undefined' && koreDebugger && typeof koreDebugger.log === 'function') {
      koreDebugger.log(PREFIX + message);
    }
  }

  function settle(status, contactId, message) {
    BotUserSession.put('ContactId', contactId);
    BotUserSession.put('ContactIdStatus', status);
    log('ContactIdStatus=' + status + ': ' + message);
  }

  function findHeader(headers, lowerCaseName) {
    for (var i = 0; i < headers.length; i++) {
      var header = headers[i];
      if (header && typeof header.name === 'string' && header.name.trim().toLowerCase() === lowerCaseName) {
        return header;
      }
    }
    return null;
  }

  var userSession = context && context.session && context.session.UserSession;
  var headers = userSession && userSession.sipHeaders;
  if (!Array.isArray(headers)) {
    settle('no_sip_headers', '', 'no SIP headers in UserSession.sipHeaders; add the Start Flow script');
    return;
  }
  var header = findHeader(headers, HEADER);
  if (header === null) {
    settle('missing', '', 'no X-Amzn-ConnectContactId among ' + headers.length + ' SIP headers');
    return;
  }
  var value = typeof header.value === 'string' ? header.value.trim() : '';
  if (!UUID.test(value)) {
    settle('invalid', '', 'X-Amzn-ConnectContactId is not a UUID (' + value.length + ' characters)');
    return;
  }
  var contactId = value.toLowerCase();
  settle('found', contactId, 'ContactId ' + contactId);
})();
