// The shop's chat page. One turn = POST /v1/chat (ChatService.Chat through the edge's JSON
// transcoder). The server keeps no session: the conversation state it returns lives in
// sessionStorage and goes back with the next turn, so any gateway replica can answer.
// Labels, codes, prices and quick replies come from contract.js (generated from
// recommender/schema.py), never typed in here.
(function () {
  "use strict";

  const CONTRACT = window.RECOMMENDER_CONTRACT;
  const CHAT_URL = "/v1/chat";
  const STORAGE_KEY = "recommender.chat.v1";
  const TURN_TIMEOUT_MS = 20000;
  const SLOTS = CONTRACT.slots;
  const SLOT_BY_NAME = Object.fromEntries(SLOTS.map((s) => [s.name, s]));
  const SLOT_BY_ENUM = Object.fromEntries(SLOTS.map((s) => [s.slotEnum, s]));
  // A recommendation line of the bot's reply: "1. 게임 콘솔 (64%) - 게임용으로 딱 맞아요".
  const REC_LINE = /^\s*(\d+)\. .+ \(\d+%\) - (.+)$/;
  const HANGUL = /[\uac00-\ud7a3\u3131-\u318e]/;
  const LATIN = /[A-Za-z]/;

  // ------------------------------------------------------------------ the page's own words

  const TEXT = {
    ko: {
      title: "쇼핑 도우미",
      startOver: "처음부터",
      languageToggle: "English",
      languageToggleLabel: "Switch the page to English",
      conversation: "대화",
      typing: "답변을 준비하고 있어요",
      understoodTitle: "제가 이해한 내용",
      understoodHint: "눌러서 고칠 수 있어요",
      correctionNote: "고친 내용은 다음 메시지부터 반영돼요.",
      messageLabel: "메시지",
      placeholder: "메시지를 입력하세요",
      send: "보내기",
      sendHint: "Enter 보내기 · Shift+Enter 줄바꿈",
      skipToMessage: "메시지 입력으로 건너뛰기",
      chipsLabel: "빠른 답변",
      cancel: "취소",
      apply: "적용",
      unknown: "모름",
      notYet: "아직 몰라요",
      corrected: "고침",
      edit: (slot, value) => `${slot}: ${value}. 눌러서 고치기`,
      editTitle: (slot) => `${slot} 고치기`,
      editNumberHint: (slot) => slot === "budget" ? "원 단위 숫자 (비워 두면 모름)" : "1-100세 (비워 두면 모름)",
      badNumber: (slot) => slot === "budget" ? "예산은 0원에서 10억원 사이의 숫자로 적어 주세요."
        : "나이는 1세에서 100세 사이의 숫자로 적어 주세요.",
      welcome: "안녕하세요! 어떤 상품을 찾으세요? 누가 쓸지, 어디에 쓸지, 예산을 말씀해 주시면 골라 드릴게요.",
      welcomeExample: "예: \u201c중학생 아들 게임기 사주려고요, 40만원 정도\u201d",
      you: "나",
      bot: "도우미",
      recommendations: "추천 상품",
      rank: (n) => `${n}위`,
      score: "추천 점수",
      typicalPrice: (price) => `보통 ${price}`,
      budget: (budget) => `예산 ${budget}`,
      withinBudget: "예산 안",
      aboveBudget: "예산 초과",
      question: "질문",
      restarted: "처음부터 다시 시작했어요.",
      errors: {
        tooLong: (n, max) => `메시지가 너무 길어요 (${n.toLocaleString("ko-KR")}자). ${max.toLocaleString("ko-KR")}자 이하로 줄여 주세요.`,
        down: "지금은 상담 서비스에 연결할 수 없어요. 잠시 후 다시 시도해 주세요.",
        slow: "답변이 늦어지고 있어요. 잠시 후 다시 보내 주세요.",
        busy: "지금 문의가 많아요. 잠시 후 다시 시도해 주세요.",
        auth: "상담을 이용하려면 먼저 쇼핑몰에 로그인해 주세요.",
        invalid: "이 메시지는 처리할 수 없었어요. 다르게 말씀해 주시겠어요?",
        stateReset: "이전 대화를 이어갈 수 없어서 처음부터 다시 시작했어요.",
        unexpected: "문제가 생겨 답변을 드리지 못했어요. 다시 시도해 주세요.",
      },
    },
    en: {
      title: "Shopping assistant",
      startOver: "Start over",
      languageToggle: "한국어",
      languageToggleLabel: "페이지를 한국어로 보기",
      conversation: "Conversation",
      typing: "Preparing an answer",
      understoodTitle: "What I understood",
      understoodHint: "Tap to correct",
      correctionNote: "Your correction applies from your next message.",
      messageLabel: "Message",
      placeholder: "Type your message",
      send: "Send",
      sendHint: "Enter to send · Shift+Enter for a new line",
      skipToMessage: "Skip to the message box",
      chipsLabel: "Quick replies",
      cancel: "Cancel",
      apply: "Apply",
      unknown: "not sure",
      notYet: "not known yet",
      corrected: "corrected",
      edit: (slot, value) => `${slot}: ${value}. Tap to correct`,
      editTitle: (slot) => `Correct the ${slot}`,
      editNumberHint: (slot) => slot === "budget" ? "in won (leave empty if not sure)" : "1-100 years (leave empty if not sure)",
      badNumber: (slot) => slot === "budget" ? "Please enter a budget between 0 and 1,000,000,000 won."
        : "Please enter an age between 1 and 100.",
      welcome: "Hello! What are you looking for? Tell me who it is for, what it is for and your budget, and I will pick products for you.",
      welcomeExample: "e.g. \u201ca gift for my mom who loves cooking, around 200,000 won\u201d",
      you: "You",
      bot: "Assistant",
      recommendations: "Recommendations",
      rank: (n) => `#${n}`,
      score: "match score",
      typicalPrice: (price) => `usually ${price}`,
      budget: (budget) => `budget ${budget}`,
      withinBudget: "within budget",
      aboveBudget: "above budget",
      question: "Question",
      restarted: "Started over.",
      errors: {
        tooLong: (n, max) => `Your message is too long (${n.toLocaleString("en-US")} characters). Please keep it to ${max.toLocaleString("en-US")} characters or fewer.`,
        down: "The shop assistant is not available right now. Please try again in a moment.",
        slow: "The answer is taking too long. Please send your message again in a moment.",
        busy: "The assistant is busy right now. Please try again in a moment.",
        auth: "Please sign in to the shop to use the assistant.",
        invalid: "I couldn't process that message. Could you put it another way?",
        stateReset: "I couldn't continue the earlier conversation, so I started over.",
        unexpected: "Something went wrong and I couldn't answer. Please try again.",
      },
    },
  };

  // ------------------------------------------------------------------ formatting

  /** 300000 -> "30만원" / "300,000 won"; 150000000 -> "1억 5,000만원" (as the bot says it). */
  function formatWon(amount, language) {
    const won = Math.trunc(amount);
    if (language !== "ko") return `${won.toLocaleString("en-US")} won`;
    if (won >= 100000000 && won % 10000 === 0) {
      const man = Math.trunc(won / 10000);
      const eok = Math.trunc(man / 10000);
      const rest = man % 10000;
      return rest ? `${eok.toLocaleString("ko-KR")}억 ${rest.toLocaleString("ko-KR")}만원` : `${eok.toLocaleString("ko-KR")}억원`;
    }
    if (won >= 10000 && won % 10000 === 0) return `${(won / 10000).toLocaleString("ko-KR")}만원`;
    return `${won.toLocaleString("ko-KR")}원`;
  }

  function formatAge(age, language) {
    if (language === "ko") {
      // The bot reads "30대" as 35, "30대 초반" as 32, "30대 후반" as 38: say it back that way.
      if (age >= 10 && [2, 5, 8].includes(age % 10)) {
        return `${age - (age % 10)}대${{ 2: " 초반", 5: "", 8: " 후반" }[age % 10]}`;
      }
      return `${age}세`;
    }
    if (age >= 20 && [2, 5, 8].includes(age % 10)) {
      return `${{ 2: "early ", 5: "", 8: "late " }[age % 10]}${age - (age % 10)}s`;
    }
    return `${age} years old`;
  }

  function slotValueText(slot, value, language) {
    if (!value) return TEXT[language].notYet;
    if (slot.name === "age") return formatAge(value, language);
    if (slot.name === "budget") return formatWon(value, language);
    const code = (slot.codes || []).find((c) => c.value === value);
    return code ? code[language] : String(value);
  }

  function slotLabel(slot, language) {
    return slot[language];
  }

  /** Characters as the server counts them (code points, not UTF-16 units). */
  function characterCount(text) {
    return Array.from(text).length;
  }

  function guessLanguage(text, previous) {
    if (HANGUL.test(text)) return "ko";
    if (LATIN.test(text)) return "en";
    return previous;
  }

  // ------------------------------------------------------------------ session (sessionStorage)

  function emptySession(language) {
    return { version: 1, language, state: null, transcript: [], corrected: [], followUp: null };
  }

  function loadSession() {
    const fallback = emptySession(navigator.language && navigator.language.toLowerCase().startsWith("ko") ? "ko" : "en");
    try {
      const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      if (stored && stored.version === 1 && Array.isArray(stored.transcript) && TEXT[stored.language]) {
        return stored;
      }
    } catch (_) {
      // A damaged entry: start a fresh conversation rather than fail.
    }
    return fallback;
  }

  function saveSession() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    } catch (_) {
      // Storage full or disabled: the conversation still works until the tab closes.
    }
  }

  function features() {
    const values = session.state && Array.isArray(session.state.features) ? session.state.features : [];
    return SLOTS.map((slot) => Number(values[slot.index] || 0));
  }

  // ------------------------------------------------------------------ the chat call

  class ChatError extends Error {
    constructor(kind, detail) {
      super(kind);
      this.kind = kind;
      this.detail = detail || "";
    }
  }

  // gRPC status codes as the transcoder returns them in {"code": n, "message": ...}.
  const GRPC = { INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8,
    UNAVAILABLE: 14, UNAUTHENTICATED: 16 };

  async function callChat(text, state) {
    const body = { text, topK: CONTRACT.defaultTopK };
    if (state) body.state = state;
    let response;
    try {
      response = await fetch(CHAT_URL, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        // A shop that puts the page behind its own login sends its session cookie along.
        credentials: "same-origin",
        signal: AbortSignal.timeout(TURN_TIMEOUT_MS),
      });
    } catch (error) {
      throw new ChatError(error && error.name === "TimeoutError" ? "slow" : "down");
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null; // the edge's own errors (no healthy gateway) are plain text
    }
    if (response.ok && payload && typeof payload.reply === "string") return payload;
    const code = payload && typeof payload.code === "number" ? payload.code : null;
    const message = payload && typeof payload.message === "string" ? payload.message : "";
    if (code === GRPC.UNAVAILABLE || [502, 503].includes(response.status)) throw new ChatError("down");
    if (code === GRPC.DEADLINE_EXCEEDED || response.status === 504) throw new ChatError("slow");
    if (code === GRPC.UNAUTHENTICATED || code === GRPC.PERMISSION_DENIED || [401, 403].includes(response.status)) {
      throw new ChatError("auth");
    }
    if (code === GRPC.RESOURCE_EXHAUSTED || response.status === 429) throw new ChatError("busy");
    if (code === GRPC.INVALID_ARGUMENT || response.status === 400) {
      throw new ChatError(message.startsWith("state") ? "badState" : "invalid", message);
    }
    throw new ChatError("unexpected", `${response.status} ${message}`);
  }

  /** The reply split for display: the recommendation lines become cards (their reasons kept
   * by rank), the follow-up question gets its own bubble. */
  function splitReply(reply, hasItems, asksQuestion) {
    let lines = reply.split("\n").filter((line) => line.trim());
    let question = null;
    if (asksQuestion && lines.length) question = lines.pop();
    const reasons = {};
    const before = [];
    const after = [];
    let seenRecommendation = false;
    lines.forEach((line, index) => {
      const match = hasItems ? REC_LINE.exec(line) : null;
      if (match) {
        reasons[Number(match[1])] = match[2];
        seenRecommendation = true;
      } else if (!seenRecommendation) {
        // The heading right before the first recommendation ("추천 상품:") is the cards' title.
        const next = lines[index + 1];
        if (!(hasItems && next && REC_LINE.test(next) && line.trim().endsWith(":"))) before.push(line);
      } else {
        after.push(line);
      }
    });
    return { before, after, reasons, question };
  }

  // ------------------------------------------------------------------ rendering

  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const slotsList = $("slots");
  const chips = $("chips");
  const message = $("message");
  const sendButton = $("send");
  const errorBox = $("error");
  const counter = $("counter");
  const typing = $("typing");
  const editor = $("editor");

  let session = loadSession();
  let busy = false;

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function bubble(role, language, ...content) {
    const t = TEXT[language];
    return el("li", { class: `message ${role}`, lang: language },
      el("span", { class: "visually-hidden", text: `${role === "user" ? t.you : t.bot}: ` }),
      ...content);
  }

  function paragraphs(lines) {
    return lines.map((line) => el("p", { text: line }));
  }

  function card(item, budget, language) {
    const t = TEXT[language];
    const product = CONTRACT.products[item.productId];
    const name = (language === "ko" ? item.nameKo : item.name) || item.name || item.productId;
    const percent = Math.round(Math.max(0, Math.min(1, item.score)) * 100);
    const bar = el("div", { class: "score-bar", role: "meter", "aria-valuemin": 0, "aria-valuemax": 100,
      "aria-valuenow": percent, "aria-label": `${t.score} ${percent}%` }, el("span", { class: "score-fill" }));
    bar.firstChild.style.setProperty("width", `${percent}%`);
    const price = el("p", { class: "price" });
    if (product && product.priceKrw) {
      price.append(el("span", { class: "typical", text: t.typicalPrice(formatWon(product.priceKrw, language)) }));
      if (budget) {
        const within = product.priceKrw <= budget;
        price.append(el("span", { class: "budget", text: t.budget(formatWon(budget, language)) }),
          el("span", { class: `fit ${within ? "within" : "above"}`, text: within ? t.withinBudget : t.aboveBudget }));
      }
    }
    return el("li", { class: "card", "data-product": item.productId },
      el("div", { class: "card-head" },
        el("span", { class: "rank", text: t.rank(item.rank) }),
        el("h3", { class: "product", text: name }),
        el("span", { class: "percent", "aria-hidden": "true", text: `${percent}%` })),
      bar,
      price.childNodes.length ? price : null,
      item.reason ? el("p", { class: "reason", text: item.reason }) : null);
  }

  function renderEntry(entry) {
    if (entry.role === "user") {
      log.append(bubble("user", entry.language, el("p", { text: entry.text })));
      return;
    }
    const t = TEXT[entry.language];
    const parts = paragraphs(entry.before);
    if (entry.items && entry.items.length) {
      parts.push(el("section", { class: "recommendations", "aria-label": t.recommendations },
        el("h3", { class: "cards-title", text: t.recommendations }),
        el("ol", { class: "cards" }, ...entry.items.map((item) => card(item, entry.budget, entry.language)))));
    }
    parts.push(...paragraphs(entry.after));
    if (parts.length) log.append(bubble("bot", entry.language, ...parts));
    if (entry.question) {
      log.append(bubble("bot question", entry.language,
        el("span", { class: "visually-hidden", text: `${t.question}: ` }), el("p", { text: entry.question })));
    }
  }

  function renderWelcome() {
    const t = TEXT[session.language];
    log.append(bubble("bot welcome", session.language, el("p", { text: t.welcome }),
      el("p", { class: "example", text: t.welcomeExample })));
  }

  function renderLog() {
    log.replaceChildren();
    renderWelcome();
    session.transcript.forEach(renderEntry);
    scrollToEnd();
  }

  function scrollToEnd() {
    const last = log.lastElementChild;
    if (last) last.scrollIntoView({ block: "end" });
  }

  function renderSlots() {
    const language = session.language;
    const t = TEXT[language];
    const values = features();
    slotsList.replaceChildren(...SLOTS.map((slot) => {
      const value = values[slot.index];
      const corrected = session.corrected.includes(slot.name);
      const valueText = slotValueText(slot, value, language);
      const button = el("button", { type: "button", class: `slot${value ? " known" : ""}${corrected ? " corrected" : ""}`,
        "data-slot": slot.name, "aria-label": t.edit(slotLabel(slot, language), valueText) },
        el("span", { class: "slot-name", text: slotLabel(slot, language) }),
        el("span", { class: "slot-value", text: valueText }),
        corrected ? el("span", { class: "badge", text: t.corrected }) : null);
      button.addEventListener("click", () => openEditor(slot));
      return el("li", {}, button);
    }));
    $("correction-note").hidden = session.corrected.length === 0;
  }

  function renderChips() {
    const language = session.language;
    const slot = session.followUp && CONTRACT.quickReplies[session.followUp] ? session.followUp : null;
    const list = slot ? CONTRACT.quickReplies[slot][language] : CONTRACT.defaultQuickReplies[language];
    chips.setAttribute("aria-label", TEXT[language].chipsLabel);
    chips.replaceChildren(...list.map((chip) => {
      const button = el("button", { type: "button", class: "chip", lang: language, "data-slot": chip.slot, text: chip.text });
      button.addEventListener("click", () => send(chip.text));
      return button;
    }));
  }

  function applyLanguage() {
    const language = session.language;
    const t = TEXT[language];
    document.documentElement.lang = language;
    document.title = language === "ko" ? "쇼핑 도우미 · Shopping assistant" : "Shopping assistant · 쇼핑 도우미";
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      const value = t[node.dataset.i18n];
      if (typeof value === "string") node.textContent = value;
    });
    message.placeholder = t.placeholder;
    const toggle = $("language-toggle");
    toggle.textContent = t.languageToggle;
    toggle.lang = language === "ko" ? "en" : "ko";
    toggle.setAttribute("aria-label", t.languageToggleLabel);
    renderSlots();
    renderChips();
    updateCounter();
  }

  function setLanguage(language) {
    if (!TEXT[language] || language === session.language) return;
    session.language = language;
    applyLanguage();
  }

  // ------------------------------------------------------------------ errors

  let errorState = null; // [kind, ...args] so the sentence follows a language switch

  function showError(kind, ...args) {
    errorState = [kind, ...args];
    const sentence = TEXT[session.language].errors[kind];
    errorBox.textContent = typeof sentence === "function" ? sentence(...args) : sentence;
    errorBox.dataset.kind = kind;
    errorBox.hidden = false;
  }

  function clearError() {
    errorState = null;
    errorBox.hidden = true;
    errorBox.textContent = "";
    delete errorBox.dataset.kind;
  }

  function updateCounter() {
    const count = characterCount(message.value.trim());
    const max = CONTRACT.maxTextChars;
    const near = count > max * 0.8;
    counter.textContent = near ? `${count.toLocaleString()} / ${max.toLocaleString()}` : "";
    counter.classList.toggle("over", count > max);
    if (errorState && errorState[0] === "tooLong" && count <= max) clearError();
    if (errorState) showError(...errorState);
  }

  // ------------------------------------------------------------------ sending

  function setBusy(value) {
    busy = value;
    typing.hidden = !value;
    sendButton.disabled = value;
    log.setAttribute("aria-busy", value ? "true" : "false");
    chips.querySelectorAll("button").forEach((b) => { b.disabled = value; });
  }

  async function send(rawText, fromInput) {
    if (busy) return;
    const text = rawText.trim();
    if (!text) {
      message.focus();
      return;
    }
    const count = characterCount(text);
    if (count > CONTRACT.maxTextChars) {
      showError("tooLong", count, CONTRACT.maxTextChars);
      message.focus();
      return;
    }
    clearError();
    setLanguage(guessLanguage(text, session.language));
    setBusy(true);
    let result;
    try {
      try {
        result = await callChat(text, session.state);
      } catch (error) {
        if (!(error instanceof ChatError) || error.kind !== "badState") throw error;
        // The stored state was refused (an older page, or edited by hand): begin again.
        startOver({ keepInput: true });
        showError("stateReset");
        result = await callChat(text, null);
      }
    } catch (error) {
      setBusy(false);
      showError(error instanceof ChatError ? error.kind : "unexpected");
      message.focus();
      return;
    }
    setBusy(false);
    if (fromInput) {
      message.value = "";
      message.style.removeProperty("height");
      updateCounter();
    }
    acceptTurn(text, result);
    message.focus();
  }

  function acceptTurn(text, result) {
    const language = TEXT[result.state && result.state.language] ? result.state.language : session.language;
    const items = Array.isArray(result.items) ? result.items : [];
    const followUp = SLOT_BY_ENUM[result.followUp] ? SLOT_BY_ENUM[result.followUp].name : null;
    const parts = splitReply(result.reply, items.length > 0, followUp !== null);
    const userEntry = { role: "user", text, language };
    session.state = result.state || null;
    session.corrected = [];
    session.followUp = followUp;
    const botEntry = {
      role: "bot",
      language,
      before: parts.before,
      after: parts.after,
      question: parts.question,
      budget: features()[SLOT_BY_NAME.budget.index],
      items: items.map((item) => ({
        productId: item.productId, name: item.name, nameKo: item.nameKo, score: Number(item.score) || 0,
        rank: item.rank, reason: parts.reasons[item.rank] || "",
      })),
    };
    session.transcript.push(userEntry, botEntry);
    session.language = language;
    saveSession();
    renderEntry(userEntry);
    renderEntry(botEntry);
    applyLanguage();
    scrollToEnd();
  }

  function startOver(options) {
    const keepInput = options && options.keepInput;
    session = emptySession(session.language);
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch (_) {
      // nothing stored
    }
    clearError();
    if (!keepInput) message.value = "";
    renderLog();
    applyLanguage();
    message.focus();
  }

  // ------------------------------------------------------------------ corrections

  let editing = null;

  function openEditor(slot) {
    const language = session.language;
    const t = TEXT[language];
    const current = features()[slot.index];
    editing = slot;
    $("editor-title").textContent = t.editTitle(slotLabel(slot, language));
    $("editor-error").hidden = true;
    const body = $("editor-body");
    if (slot.codes) {
      const options = [{ value: 0, label: t.unknown }, ...slot.codes.map((c) => ({ value: c.value, label: c[language] }))];
      body.replaceChildren(el("fieldset", { class: options.length > 6 ? "options many" : "options" },
        el("legend", { class: "visually-hidden", text: slotLabel(slot, language) }),
        ...options.map((option) => el("label", { class: "option" },
          el("input", { type: "radio", name: "slot-value", value: option.value, checked: option.value === current }),
          el("span", { text: option.label })))));
    } else {
      const input = el("input", { type: "text", inputmode: "numeric", id: "editor-number", autocomplete: "off",
        value: current ? String(current) : "", "aria-describedby": "editor-number-hint" });
      body.replaceChildren(
        el("label", { for: "editor-number", class: "field-label", text: slotLabel(slot, language) }),
        input,
        el("p", { id: "editor-number-hint", class: "hint", text: t.editNumberHint(slot.name) }));
    }
    editor.showModal();
    const focusTarget = body.querySelector("input:checked") || body.querySelector("input");
    if (focusTarget) focusTarget.focus();
  }

  function readEditorValue(slot) {
    if (slot.codes) {
      const checked = editor.querySelector("input[name=slot-value]:checked");
      return checked ? Number(checked.value) : null;
    }
    const raw = $("editor-number").value.replace(/[\s,원]/g, "").replace(/won$/i, "");
    if (raw === "") return 0;
    if (!/^\d+$/.test(raw)) return NaN;
    const value = Number(raw);
    const low = slot.name === "age" ? 1 : slot.low;
    return value >= low && value <= slot.high ? value : NaN;
  }

  function applyCorrection() {
    const slot = editing;
    if (!slot) return;
    const value = readEditorValue(slot);
    if (Number.isNaN(value)) {
      const box = $("editor-error");
      box.textContent = TEXT[session.language].badNumber(slot.name);
      box.hidden = false;
      return;
    }
    if (value === null) {
      editor.close();
      return;
    }
    // The correction travels in the state the next turn sends: the gateway validates the
    // state's features like any input and merges the new turn into them.
    if (!session.state) {
      session.state = { features: SLOTS.map(() => 0), asked: [], turn: 0, language: session.language };
    }
    const next = features();
    if (next[slot.index] !== value) {
      next[slot.index] = value;
      session.state.features = next;
      if (!session.corrected.includes(slot.name)) session.corrected.push(slot.name);
    }
    saveSession();
    editor.close();
    renderSlots();
    const button = slotsList.querySelector(`button[data-slot="${slot.name}"]`);
    if (button) button.focus();
  }

  // ------------------------------------------------------------------ wiring

  $("composer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send(message.value, true);
  });
  message.addEventListener("keydown", (event) => {
    // isComposing: Enter that finishes a Korean syllable in the IME must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send(message.value, true);
    }
  });
  message.addEventListener("input", () => {
    message.style.setProperty("height", "auto");
    message.style.setProperty("height", `${Math.min(message.scrollHeight, 160)}px`);
    updateCounter();
  });
  $("start-over").addEventListener("click", () => startOver());
  $("language-toggle").addEventListener("click", () => {
    setLanguage(session.language === "ko" ? "en" : "ko");
    saveSession();
    renderLog();
  });
  $("editor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    applyCorrection();
  });
  $("editor-cancel").addEventListener("click", () => editor.close());
  editor.addEventListener("close", () => { editing = null; });

  renderLog();
  applyLanguage();
  document.body.dataset.ready = "true";
})();
