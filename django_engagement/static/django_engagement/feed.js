/* django-engagement live feed: keeps an unread badge and an item list up to date.
 *
 * Dependency-free. Mark up any page, then load this script:
 *
 *   <span data-engagement-unread></span>
 *   <ul data-engagement-feed></ul>
 *   <script src="{% static 'django_engagement/feed.js' %}"
 *           data-stream-url="/api/engagement/activity-feed/stream/"></script>
 *
 * EventSource reconnects by itself and sends Last-Event-ID, so no item is lost while
 * the connection is down; when the browser gives up (the server answered an error),
 * this script opens a new EventSource after a growing delay (up to 30 s), resuming
 * from the last item it saw. Each new item is also sent as a DOM event
 * "engagement:item" (detail: the item) on document, and each count as
 * "engagement:unread" (detail: {unread_count}), for pages that render their own way.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var url = (script && script.getAttribute("data-stream-url")) ||
    "/api/engagement/activity-feed/stream/";
  var maxItems = parseInt((script && script.getAttribute("data-max-items")) || "20", 10);
  var lastId = null;
  var delay = 1000;

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function showCount(count) {
    var badges = document.querySelectorAll("[data-engagement-unread]");
    for (var i = 0; i < badges.length; i++) {
      badges[i].textContent = String(count);
      badges[i].hidden = count === 0;
    }
    emit("engagement:unread", { unread_count: count });
  }

  function showItem(item) {
    var lists = document.querySelectorAll("[data-engagement-feed]");
    for (var i = 0; i < lists.length; i++) {
      var entry = document.createElement("li");
      entry.setAttribute("data-item-id", String(item.id));
      entry.className = item.is_read ? "engagement-read" : "engagement-unread";
      entry.textContent = item.title;
      lists[i].insertBefore(entry, lists[i].firstChild);
      while (lists[i].children.length > maxItems) {
        lists[i].removeChild(lists[i].lastChild);
      }
    }
    emit("engagement:item", item);
  }

  function connect() {
    var target = lastId === null ? url :
      url + (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastId);
    var source = new EventSource(target, { withCredentials: true });
    source.addEventListener("open", function () { delay = 1000; });
    source.addEventListener("unread_count", function (event) {
      showCount(JSON.parse(event.data).unread_count);
    });
    source.addEventListener("item", function (event) {
      lastId = event.lastEventId;
      showItem(JSON.parse(event.data));
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      }
    });
  }

  if (typeof EventSource === "function") {
    connect();
  }
})();
