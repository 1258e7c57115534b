// Teach in place: selecting text inside an answer fills its form with the span's offsets, in
// Unicode code points of the answer's text (what the server counts), and the selected text.
"use strict";

function codePoints(text) {
  return Array.from(text).length;
}

function offsetWithin(root, node, offset) {
  const range = document.createRange();
  range.setStart(root, 0);
  range.setEnd(node, offset);
  return codePoints(range.toString());
}

function onSelection() {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
  const range = selection.getRangeAt(0);
  const answer = range.commonAncestorContainer.nodeType === Node.ELEMENT_NODE
    ? range.commonAncestorContainer.closest(".answer")
    : range.commonAncestorContainer.parentElement.closest(".answer");
  if (!answer) return;
  const form = document.querySelector(`form.teach[data-for="${answer.dataset.interaction}"]`);
  if (!form) return;
  const start = offsetWithin(answer, range.startContainer, range.startOffset);
  const end = offsetWithin(answer, range.endContainer, range.endOffset);
  if (end <= start) return;
  form.elements.span_start.value = String(start);
  form.elements.span_end.value = String(end);
  form.elements.span_text.value = range.toString();
  form.querySelector(".selection").textContent = `Marking “${range.toString()}” (${start}–${end})`;
  form.querySelector("button[type=submit]").disabled = false;
  form.elements.correction.focus();
}

document.addEventListener("mouseup", onSelection);
document.addEventListener("keyup", (event) => { if (event.shiftKey) onSelection(); });
