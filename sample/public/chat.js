// The sample's chat page: joins /chat/rooms/:room with the chat.v1 subprotocol and shows what the room says.
// The server sends JSON texts {type: 'join' | 'message' | 'leave', name, text?} to everyone in the room,
// the sender included, so a message shows up here when the server echoes it, not when it is sent.
// Peer data only ever goes into textContent.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const joinForm = $('join-form');
  const roomInput = $('room');
  const nameInput = $('name');
  const status = $('status');
  const log = $('log');
  const sendForm = $('send-form');
  const messageInput = $('message');
  const sendButton = $('send');

  if (nameInput.value === '') nameInput.value = `guest-${Math.floor(1000 + Math.random() * 9000)}`;

  /** @type {WebSocket | undefined} */
  let socket;

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
      case 'join':
        append('join', [['name', name], ['', ' joined']]);
        break;
      case 'leave':
        append('leave', [['name', name], ['', ' left']]);
        break;
      case 'message':
        append('message', [['name', name], ['', ': '], ['text', String(event.text ?? '')]]);
        break;
      default:
        append('raw', [['text', String(data)]]);
    }
  };

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const room = roomInput.value.trim() || 'lobby';
    const name = nameInput.value.trim();
    if (name === '') return;
    if (socket) {
      socket.onclose = null;
      socket.close(1000);
    }
    log.replaceChildren();
    setConnected(false);
    status.textContent = `Connecting to ${room}…`;

    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/chat/rooms/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`;
    const ws = new WebSocket(url, 'chat.v1');
    socket = ws;
    ws.onopen = () => {
      status.textContent = `In ${room} as ${name}.`;
      setConnected(true);
    };
    ws.onmessage = (message) => render(message.data);
    ws.onclose = (close) => {
      if (socket !== ws) return;
      socket = undefined;
      setConnected(false);
      status.textContent = `Disconnected (${close.code}${close.reason ? `: ${close.reason}` : ''}).`;
    };
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
