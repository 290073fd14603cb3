/* django-multifactor WebAuthn pages. No inline script: forms carry their endpoints in data- attributes.
 * A ceremony starts only from a click (submit), except passkey autofill (conditional mediation), which
 * shows nothing until the user focuses the username field. */
(function () {
  "use strict";

  function b64urlToBuffer(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    var padded = base64 + "===".slice((base64.length + 3) % 4);
    var binary = atob(padded);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: b64urlToBuffer(item.id) });
    });
  }

  function creationOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: b64urlToBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: b64urlToBuffer(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: b64urlToBuffer(json.challenge),
      allowCredentials: withIds(json.allowCredentials),
    });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try { return credential.toJSON(); } catch (e) { /* fall through to the manual encoding */ }
    }
    var r = credential.response;
    var response = { clientDataJSON: bufferToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bufferToB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = bufferToB64url(r.authenticatorData);
      response.signature = bufferToB64url(r.signature);
      if (r.userHandle) response.userHandle = bufferToB64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: bufferToB64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function ApiError(message, code) { this.name = "ApiError"; this.message = message; this.code = code; }

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function post(form, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken(form) },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (payload) {
        if (!response.ok) {
          var error = payload.errors && payload.errors[0];
          throw new ApiError(error ? error.message : form.dataset.msgServer, error && error.code);
        }
        return payload.data;
      });
    });
  }

  function explain(form, error) {
    var d = form.dataset;
    switch (error && error.name) {
      case "ApiError":
        // the same answer for every failed passkey sign-in (no account enumeration), with what to do when the
        // passkey was deleted here but is still on the device
        return error.code === "passkey_failed" && d.msgPasskeyFailed ? error.message + " " + d.msgPasskeyFailed : error.message;
      case "NotAllowedError": return d.msgCancelled;
      case "AbortError": return d.msgCancelled;
      case "InvalidStateError": return d.msgRegistered;
      case "SecurityError": return d.msgDomain;
      case "NotSupportedError": return d.msgUnsupported;
      default: return d.msgServer;
    }
  }

  function say(form, text, isError) {
    var box = form.querySelector("[data-mf-status]");
    box.textContent = text;
    box.classList.toggle("mf-error", Boolean(isError));
    box.hidden = !text;
  }

  function busy(form, on) {
    form.querySelectorAll("button").forEach(function (button) { button.disabled = on; });
  }

  var conditional = null;  // the AbortController of a pending autofill request

  function getAssertion(form, options, mediation) {
    if (conditional) { conditional.abort(); conditional = null; }
    var request = { publicKey: requestOptions(options.publicKey) };
    if (mediation) {
      conditional = new AbortController();
      request.mediation = mediation;
      request.signal = conditional.signal;
    }
    return navigator.credentials.get(request);
  }

  var ceremonies = {
    register: function (form) {
      var passkey = form.querySelector("input[name=passkey]");
      var name = form.querySelector("input[name=name]");
      return post(form, form.dataset.begin, { passkey: Boolean(passkey && passkey.checked) })
        .then(function (options) { return navigator.credentials.create({ publicKey: creationOptions(options.publicKey) }); })
        .then(function (credential) {
          return post(form, form.dataset.complete, { credential: credentialJSON(credential), name: name ? name.value : "" });
        })
        .then(function () { window.location.assign(form.dataset.done); });
    },
    authenticate: function (form) {
      return post(form, form.dataset.begin, {})
        .then(function (options) { return getAssertion(form, options); })
        .then(function (credential) {
          var trust = form.querySelector("input[name=trust_browser]");
          return post(form, form.dataset.complete, { credential: credentialJSON(credential), trust_browser: Boolean(trust && trust.checked) });
        })
        .then(function (data) { window.location.assign(data.next); });
    },
    passkey: function (form, mediation) {
      return post(form, form.dataset.begin, {})
        .then(function (options) { return getAssertion(form, options, mediation); })
        .then(function (credential) {
          return post(form, form.dataset.complete, { credential: credentialJSON(credential), next: form.dataset.next || "" });
        })
        .then(function (data) { window.location.assign(data.next); });
    },
  };

  var AUTOFILL_REFRESH_MS = 270 * 1000;  // the server keeps a challenge 300 s: ask for a new one before
  var autofillTimer = null;

  function startAutofill(form) {
    clearTimeout(autofillTimer);
    if (!("mfConditional" in form.dataset) || !window.PublicKeyCredential ||
        !PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) return;
      run(form, "conditional");
      autofillTimer = setTimeout(function () { startAutofill(form); }, AUTOFILL_REFRESH_MS);
    });
  }

  function run(form, mediation) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, form.dataset.msgUnsupported, true);
      return;
    }
    if (!mediation) { clearTimeout(autofillTimer); busy(form, true); say(form, form.dataset.msgWaiting, false); }
    ceremonies[form.dataset.mfWebauthn](form, mediation).catch(function (error) {
      if (mediation && error && error.name === "AbortError") return;  // replaced by a button press or a refresh
      say(form, explain(form, error), true);
      if (!mediation) startAutofill(form);  // a failed button press leaves autofill working
    }).finally(function () { if (!mediation) busy(form, false); });
  }

  document.querySelectorAll("form[data-mf-webauthn]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(form);
    });
    startAutofill(form);
  });
})();
