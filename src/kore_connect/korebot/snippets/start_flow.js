/*
 * kore-connect: Start Flow script.
 * Paste into: Kore.ai Voice Automation > Start Flows > your flow > a Script node right after Start.
 *
 * Keeps the SIP headers of Amazon Connect's INVITE for the bot. They are in the Start Flow's
 * context only; the bot's Agent Transfer dialog needs one of them, X-Amzn-ConnectContactId, to
 * tell the metadata store which Connect contact the bot's metadata belongs to. So the headers
 * (an array of {name, value}) are copied into the call flow and into the user session, where the
 * bot reads them back as context.session.UserSession.sipHeaders.
 *
 * Never throws: a caller must reach the bot even when the headers are missing. The Agent Transfer
 * dialog's Script node then reports ContactIdStatus "no_sip_headers".
 * Logs how many headers it kept, never their values (they include the caller's number).
 *
 * Plain ES5 script, no modules: it runs unchanged in Kore and in kore-connect's local twin.
 */
(function () {
  var PREFIX = 'kore-connect start flow: ';

  function log(message) {
    if (typeof koreDebugger !== 'undefined' && koreDebugger && typeof koreDebugger.log === 'function') {
      koreDebugger.log(PREFIX + message);
    }
  }

  var session = context && context.BotUserSession;
  var channel = session && session.channels && session.channels[0];
  var headers = channel && channel.handle && channel.handle.sipHeaders;
  if (!Array.isArray(headers)) {
    log('no SIP headers on BotUserSession.channels[0].handle; the contact ID cannot be passed on');
    return;
  }
  setCallFlowVariable('sipHeaders', headers);
  userSessionUtils.put('sipHeaders', headers);
  log('kept ' + headers.length + ' SIP headers');
})();
