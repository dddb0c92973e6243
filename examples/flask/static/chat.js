// The chat page: join a room, send messages, see who is there. Works
// whichever server of the cluster the connection lands on.
const $ = (id) => document.getElementById(id);
const socket = io();

socket.on("connect", () => {
  $("status").textContent = socket.recovered ? "reconnected, state recovered" : "connected";
  socket.emit("stats", (answer) => { $("socket-server").textContent = answer.server; });
  if ($("user").value) join();  // after a reconnection, join again
});
socket.on("disconnect", () => { $("status").textContent = "disconnected"; });

socket.on("joined", ({ room }) => {
  $("room-name").textContent = room;
  $("text").disabled = $("send").disabled = false;
});

socket.on("presence", ({ room, people }) => {
  if (room !== $("room-name").textContent) return;
  $("people").replaceChildren(...people.map((person) => {
    const li = document.createElement("li");
    li.textContent = person;
    return li;
  }));
});

socket.on("message", ({ user, text, server }) => {
  const li = document.createElement("li");
  const who = document.createElement("b");
  who.textContent = user + ": ";
  const via = document.createElement("span");
  via.className = "server";
  via.textContent = " (via " + server + ")";
  li.append(who, text, via);
  $("messages").append(li);
});

function join() {
  socket.emit("join", { user: $("user").value, room: $("room").value });
}

$("join").addEventListener("submit", (event) => { event.preventDefault(); join(); });
$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!$("text").value) return;
  socket.emit("say", { text: $("text").value });
  $("text").value = "";
});
