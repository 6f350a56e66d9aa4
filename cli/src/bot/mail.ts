/**
 * Sends a run's email report (GET /v1/runs/:id/report?format=email: headers with In-Reply-To and
 * References of the cover letter, then the body) over SMTP with nodemailer, as it is: the
 * report's own headers, the list in Cc. Off unless the bot is given --smtp.
 */
import nodemailer, { type Transporter } from 'nodemailer';

export interface MailerOptions {
  /** smtp://host:port or smtps://user:pass@host:port */
  smtpUrl: string;
  /** Envelope sender; default the report's From address. */
  from?: string;
  /** Send only to these (testing a deployment); default the authors and the project's list. */
  to?: string[];
}

const addresses = (v: string | undefined) => [...(v ?? '').matchAll(/[^\s<>,"]+@[^\s<>,"]+/g)].map((m) => m[0]);

export class Mailer {
  private readonly transport: Transporter;

  constructor(private readonly o: MailerOptions) {
    this.transport = nodemailer.createTransport(o.smtpUrl);
  }

  async send(report: string, listEmail: string | null): Promise<void> {
    const split = report.indexOf('\n\n');
    const head = report.slice(0, split);
    const header = (name: string) => new RegExp(`^${name}:[ \\t]*(.*(?:\\n[ \\t].*)*)`, 'mi').exec(head)?.[1];
    const to = this.o.to ?? [...addresses(header('To')), ...(listEmail ? [listEmail] : [])];
    const from = this.o.from ?? addresses(header('From'))[0];
    if (!from || to.length === 0) throw new Error(`email report: no ${from ? 'recipient' : 'sender'}`);
    const cc = !this.o.to && listEmail ? `Cc: ${listEmail}\n` : '';
    const raw = (head + '\n' + cc + report.slice(split + 1)).replace(/\r?\n/g, '\r\n');
    await this.transport.sendMail({ envelope: { from, to }, raw });
  }

  close(): void {
    this.transport.close();
  }
}
