// The sample's chat page: joins /chat/rooms/:room with the chat.v1 subprotocol, shows what the room says and
// who is in it. The protocol is described in sample/chat/chat.controller.ts: room events (join, message, leave)
// come to everyone in the room, the sender included, each with its position in the room's history; `members`
// replaces the member list; `welcome` says whether a reconnect got back what was missed. When the connection
// drops, the page reconnects with the last position it saw, so nothing said meanwhile is lost.
// Peer data only ever goes into textContent.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const joinForm = $('join-form');
  const roomInput = $('room');
  const nameInput = $('name');
  const status = $('status');
  const log = $('log');
  const memberList = $('members');
  const sendForm = $('send-form');
  const messageInput = $('message');
  const sendButton = $('send');

  /** Close codes after which trying again may work (going away, abnormal, server error, restart, try later). */
  const TRANSIENT = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014]);
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 15000;

  if (nameInput.value === '') nameInput.value = `guest-${Math.floor(1000 + Math.random() * 9000)}`;

  /** @type {WebSocket | undefined} */
  let socket;
  /** The room and name joined, the last position seen in the room's history, and the pending reconnect. */
  let joined;
  let position;
  let retryTimer;
  let retryMs = RETRY_FIRST_MS;

  const setConnected = (connected) => {
    messageInput.disabled = !connected;
    sendButton.disabled = !connected;
    if (connected) messageInput.focus();
  };

  /** Appends one line to the log: `parts` are [className, text] pairs, each in its own span. */
  const append = (type, parts) => {
    const line = document.createElement('li');
    line.className = type;
    line.dataset.type = type;
    for (const [className, text] of parts) {
      const span = document.createElement('span');
      if (className) span.className = className;
      span.textContent = text;
      line.append(span);
    }
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(line);
    if (atBottom) log.scrollTop = log.scrollHeight;
  };

  const showMembers = (members) => {
    memberList.replaceChildren(
      ...members.map((member) => {
        const item = document.createElement('li');
        item.textContent = String(member?.name ?? 'someone');
        return item;
      }),
    );
  };

  /** Keeps the newest position: a welcome can come after live messages that are newer than its own. */
  const remember = (next) => {
    if (typeof next?.offset !== 'number' || typeof next?.epoch !== 'string') return;
    if (position === undefined || next.epoch !== position.epoch || next.offset > position.offset) position = next;
  };

  const render = (data) => {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      append('raw', [['text', String(data)]]);
      return;
    }
    const name = String(event?.name ?? 'someone');
    switch (event?.type) {
      case 'welcome':
        // A reconnect whose position could not be recovered: say so, rather than show a silent gap.
        if (position !== undefined && !event.recovered) append('notice', [['', 'Reconnected; messages sent meanwhile could not be recovered']]);
        remember(event.position);
        break;
      case 'members':
        showMembers(Array.isArray(event.members) ? event.members : []);
        break;
      case 'join':
        remember(event.position);
        append('join', [['name', name], ['', ' joined']]);
        break;
      case 'leave':
        remember(event.position);
        append('leave', [['name', name], ['', ' left']]);
        break;
      case 'message':
        remember(event.position);
        append('message', [['name', name], ['', ': '], ['text', String(event.text ?? '')]]);
        break;
      default:
        append('raw', [['text', String(data)]]);
    }
  };

  const connect = () => {
    const { room, name } = joined;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const query = new URLSearchParams({ name });
    if (position !== undefined) {
      query.set('offset', String(position.offset));
      query.set('epoch', position.epoch);
    }
    const ws = new WebSocket(`${scheme}://${location.host}/chat/rooms/${encodeURIComponent(room)}?${query}`, 'chat.v1');
    socket = ws;
    ws.onopen = () => {
      retryMs = RETRY_FIRST_MS;
      status.textContent = `In ${room} as ${name}.`;
      setConnected(true);
    };
    ws.onmessage = (message) => render(message.data);
    ws.onclose = (close) => {
      if (socket !== ws) return;
      socket = undefined;
      setConnected(false);
      const why = `${close.code}${close.reason ? `: ${close.reason}` : ''}`;
      if (!TRANSIENT.has(close.code)) {
        status.textContent = `Disconnected (${why}).`;
        return;
      }
      status.textContent = `Disconnected (${why}); reconnecting in ${Math.round(retryMs / 1000)} s…`;
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
  };

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const room = roomInput.value.trim() || 'lobby';
    const name = nameInput.value.trim();
    if (name === '') return;
    clearTimeout(retryTimer);
    if (socket) {
      socket.onclose = null;
      socket.close(1000);
      socket = undefined;
    }
    log.replaceChildren();
    memberList.replaceChildren();
    setConnected(false);
    status.textContent = `Connecting to ${room}…`;
    joined = { room, name };
    position = undefined;
    retryMs = RETRY_FIRST_MS;
    connect();
  });

  sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = messageInput.value;
    if (!socket || socket.readyState !== WebSocket.OPEN || text === '') return;
    socket.send(text);
    messageInput.value = '';
    messageInput.focus();
  });
})();
