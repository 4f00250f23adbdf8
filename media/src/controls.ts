/** Toolbar controls from @vscode-elements (select, button, text field), built with DOM calls only. */
import { el } from './dom';

export interface Select extends HTMLElement {
  value: string;
}

export interface TextField extends HTMLElement {
  value: string;
}

function option(value: string, label: string, selected: boolean): HTMLElement {
  const o = el('vscode-option' as 'div', undefined, label);
  o.setAttribute('value', value);
  if (selected) o.setAttribute('selected', '');
  return o;
}

export function select(
  label: string,
  entries: Array<[string, string]>,
  current: string,
  onChange: (v: string) => void,
): Select {
  const s = el('vscode-single-select' as 'div') as unknown as Select;
  s.setAttribute('aria-label', label);
  s.title = label;
  for (const [value, text] of entries) s.append(option(value, text, value === current));
  s.addEventListener('change', () => onChange(s.value));
  return s;
}

export function button(label: string, title: string, onClick: () => void, secondary = true): HTMLElement {
  const b = el('vscode-button' as 'button', undefined, label);
  if (secondary) b.setAttribute('secondary', '');
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

/** A text field; Enter runs `onEnter` with the trimmed value (when not empty). */
export function textField(
  label: string,
  placeholder: string,
  className: string,
  onEnter?: (value: string) => void,
): TextField {
  const f = el('vscode-textfield' as 'input') as unknown as TextField;
  f.setAttribute('placeholder', placeholder);
  f.setAttribute('aria-label', label);
  f.className = className;
  if (onEnter)
    f.addEventListener('keydown', (e) => {
      if ((e as KeyboardEvent).key === 'Enter' && f.value.trim()) onEnter(f.value.trim());
    });
  return f;
}
