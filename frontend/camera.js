// "Take photo": the live camera in a dialog (getUserMedia) where the browser has one and allows it. Without a
// camera the shopper is told so, and the device's own picker (which may still offer a camera app) is offered.
"use strict";

export function hasLiveCamera() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) && window.isSecureContext;
}

// `elements` = {dialog, video, capture, cancel}. Resolves to a JPEG Blob of the captured frame, or null when the
// shopper cancels. Rejects with an Error whose `reason` is "no-camera" (none, not allowed, or busy) so the caller
// can say so and fall back to the picker.
export async function captureFromCamera({ dialog, video, capture, cancel }) {
  if (!hasLiveCamera()) throw cameraError("no-camera", "this browser offers no camera here");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false });
  } catch (err) {
    throw cameraError(err && err.name === "NotAllowedError" ? "not-allowed" : "no-camera", err && err.message);
  }
  video.srcObject = stream;
  dialog.showModal();
  try { await video.play(); } catch (err) { /* autoplay refused: the shopper still sees the first frame */ }
  capture.focus();
  return new Promise((resolve) => {
    const finish = (blob) => {
      stream.getTracks().forEach((track) => track.stop());
      video.srcObject = null;
      capture.onclick = null;
      cancel.onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(blob);
    };
    capture.onclick = () => {
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth || 640;
      canvas.height = video.videoHeight || 480;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob((blob) => finish(blob), "image/jpeg", 0.92);
    };
    cancel.onclick = () => finish(null);
    dialog.onclose = () => finish(null);
  });
}

function cameraError(reason, detail) {
  const error = new Error(detail || reason);
  error.reason = reason;
  return error;
}
