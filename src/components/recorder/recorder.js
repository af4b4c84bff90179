// Media element glue for the recorder (src/components/recorder/playback.rs): the length of a
// recording without decoding it. Kept in JS because it is a small dance of media events.
//
// A WebM written by MediaRecorder in timeslices has no duration in its header, so Chromium
// reports `duration === Infinity` until it has seen the end. Seeking far past the end makes it
// read to the end and fire `durationchange` with the real duration.

const FAR_PAST_THE_END = 1e101;

function seekToEndOnce(media, onKnown) {
  let seeking = false;
  const check = () => {
    if (Number.isFinite(media.duration)) {
      media.removeEventListener('durationchange', check);
      media.removeEventListener('timeupdate', check);
      media.removeEventListener('seeked', check);
      onKnown(media.duration, seeking);
      return true;
    }
    return false;
  };
  media.addEventListener('durationchange', check);
  media.addEventListener('timeupdate', check);
  media.addEventListener('seeked', check);
  if (!check()) {
    seeking = true;
    media.currentTime = FAR_PAST_THE_END;
  }
}

/** The duration in seconds of the media at `url` (an object URL), read with an <audio>
 *  element, so a long recording is not decoded into memory. Rejects after `timeoutMs`. */
export function mediaDuration(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const audio = new Audio();
    audio.preload = 'metadata';
    audio.muted = true;
    let timer = 0;
    const finish = (settle, value) => {
      clearTimeout(timer);
      audio.removeAttribute('src');
      audio.load();
      settle(value);
    };
    timer = setTimeout(() => finish(reject, new Error('the recording did not load in time')), timeoutMs);
    audio.addEventListener('error', () => {
      const code = audio.error ? audio.error.code : 0;
      finish(reject, new Error(`the browser cannot read this recording (media error ${code})`));
    }, { once: true });
    audio.addEventListener('loadedmetadata', () => {
      seekToEndOnce(audio, (duration) => finish(resolve, duration));
    }, { once: true });
    audio.src = url;
  });
}

/** Call on an <audio controls>'s `loadedmetadata`: makes it show the real length of a
 *  MediaRecorder WebM (see above), then rewinds it to the start. */
export function showRealDuration(audio) {
  seekToEndOnce(audio, (_duration, seeked) => { if (seeked) audio.currentTime = 0; });
}
