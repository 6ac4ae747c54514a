// Share and print a result list or a clinic page. Without JavaScript the buttons stay
// hidden; the e-mail link beside them works everywhere.
(function () {
  "use strict";
  var status = document.querySelector(".share-status");

  function say(message) {
    if (status) {
      status.textContent = message;
    }
  }

  var share = document.querySelector("[data-share]");
  if (share && (navigator.share || (navigator.clipboard && window.isSecureContext))) {
    share.hidden = false;
    share.addEventListener("click", function () {
      var url = share.getAttribute("data-url");
      if (navigator.share) {
        navigator.share({ title: share.getAttribute("data-title"), url: url }).catch(function () {});
        return;
      }
      navigator.clipboard.writeText(url).then(function () {
        say(share.getAttribute("data-copied"));
      });
    });
  }

  var print = document.querySelector("[data-print]");
  if (print && window.print) {
    print.hidden = false;
    print.addEventListener("click", function () {
      window.print();
    });
  }
})();
