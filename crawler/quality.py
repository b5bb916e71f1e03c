"""Is an extracted page an article? Block, consent, captcha, paywall, JavaScript and error pages are not.

Sites answer a crawler with pages that extract cleanly but are no article: a Cloudflare "Just a moment...",
a cookie wall, "subscribe to continue reading", "You need to enable JavaScript to run this app", a "page not
found" served with status 200 (trafilatura #248: block pages filed as if they were articles). One pure
function decides, from the extracted article, the page's title and a bounded prefix of its raw HTML.

The rule that shapes everything here: an article that merely *mentions* cookies, captchas, paywalls, errors or
"404" must pass. So no single phrase rejects a page. A page is rejected only on a strong signal:

- the HTML holds a challenge or block page's machinery (Cloudflare's challenge script, DataDome, PerimeterX,
  an Imperva or Akamai block notice) and the body is short (under 600 characters);
- its title, or a " | " / " - " segment of it, IS an error, consent, captcha, block or JavaScript title
  ("Page not found", "Just a moment...", "Access denied"; not "Page not found: why links die"), and the body
  is not long (under 2,000 characters: beyond that there is real prose and nothing else is looked at);
- its body is dominated by such phrases: the paragraphs made of them (labels like "Accept all", paragraphs
  dense with them, or a sentence with one where the site speaks to the reader: "Please enable JavaScript in
  your browser") outweigh the rest, and the rest is no real lead: under max(min_chars, 400) characters and
  fewer than three paragraphs. Phrases in quotation marks and paragraphs that report ("said", "dijo",
  "заявил", a day of the week) do not count: that is news about such a page. Where there is no real lead, a
  paywall notice ("Subscribe to continue reading", "Il vous reste 86% de cet article") or a phrase a page only
  says about itself ("our website is currently unavailable in most European countries") decides even when it
  does not outweigh the rest;
- the page has no or too little text (it is rejected anyway) and something says why: a phrase in the little
  text there is, or, on a page that shows next to nothing (under 100 characters of visible text), its
  machinery: a captcha widget, an empty single-page-app shell or a <noscript> asking for JavaScript, JSON-LD
  "isAccessibleForFree": false or a paywall container, a consent framework. Ordinary articles carry these too
  (a reCAPTCHA on the comment form; "isAccessibleForFree": false on free articles of The Intercept, Rolling
  Stone and Euronews in the fundus corpus), so they never reject a page by themselves.

A paywalled article with a real lead passes: its first paragraphs tell a monitoring user the story exists and
what it says (the WSJ teasers of the extraction benchmark, 3-4 paragraphs, are such pages; the ground truth
treats them as articles).

Text is compared folded: case, accents and typographic quotes do not matter ("Página" = "pagina").
Every reason is one short string whose part before " (" is its kind, for counting per source: "too short
(120 characters, minimum 200)" counts as "too short", "access blocked (HTTP 403)" as "access blocked".
"""

from __future__ import annotations

import html as html_lib
import importlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from crawler.models import Article

NO_TEXT = "no article text"
TOO_SHORT = "too short"
CONSENT = "consent page"
CAPTCHA = "captcha or bot check"
BLOCKED = "access blocked"
PAYWALL = "paywall"
JAVASCRIPT = "JavaScript required"
ERROR = "error page"

MIN_CHARS = 200
# A body this long is real prose whatever its title says; nothing below is even looked at (the fast path).
_LONG_BODY = 2000
# Below this many characters of body, a challenge page's machinery in the HTML is decisive.
_SHORT_TEXT = 600
# Text outside marker blocks shorter than this (and min_chars) is no real lead, unless it has several
# paragraphs (blocks of a sentence or more: a menu's "Home", "World", "Sport" are no paragraphs).
_LEAD_CHARS = 400
_LEAD_PARAGRAPHS = 3
_PARAGRAPH_CHARS = 60
# A block (paragraph) is a marker block when it reports nothing (see _REPORTING) and is
# - a label of at most _LABEL_CHARS with a marker: "Access denied", "Accept all", "Already a subscriber?";
# - or dense with markers: two or more, at least one per _DENSITY characters;
# - or a sentence of at most _SENTENCE_CHARS with one marker where the site speaks to the reader or as itself
#   ("Please enable JavaScript in your browser", "our website is unavailable in..."): news prose that mentions
#   such a page speaks about it, in the third person.
# Markers inside quotation marks do not count: "users saw the message 'Access denied'" quotes a block page.
_LABEL_CHARS = 60
_DENSITY = 150
_SENTENCE_CHARS = 250
# A page with less visible text than this (menus, footers and all) shows next to nothing: its machinery (a
# captcha widget, a consent framework) says what it is.
_BARE_CHARS = 100
# Block pages are small; markers in a big page's tail are page furniture, not a verdict.
_HTML_PREFIX = 256 * 1024
# Where a page's <title> is looked for (after the inline scripts and styles some heads carry).
_TITLE_WITHIN = 64 * 1024

_MARKS = re.compile(r"[\u0300-\u036f]")
_TYPOGRAPHY = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
    }
)


def _fold(text: str) -> str:
    """Case, accents and typographic quotes removed: "Página" -> "pagina", "don’t" -> "don't", "ß" -> "ss"."""
    return _MARKS.sub("", unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))).casefold()


def _phrases(items: Iterable[str]) -> re.Pattern[str]:
    # Patterns are written lower-case and folded like the text (no \S, \W, \D or \B: casefold breaks them).
    return re.compile(r"(?<!\w)(?:" + "|".join(_fold(p) for p in items) + r")(?!\w)")


def _titles(items: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"(?:" + "|".join(_fold(p) for p in items) + r")[\s.!?…]*")


# Phrases by kind, in English, Spanish, Portuguese, Russian, French and German (and some Italian). They are
# what such pages say, not what an article about them says: "verify you are human", not "captcha technology".
_BODY_PHRASES: dict[str, list[str]] = {
    CAPTCHA: [
        r"(solve|complete|enter|fill in|type) the (captcha|characters)",
        r"captcha (below|required|erforderlich|obligatorio)",
        r"checking (your browser|if the site connection is secure|the site connection)",
        r"checking your browser before accessing",
        r"needs to review the security of your connection",
        r"verify(ing)? (that )?you are (a )?human",
        r"verify you('re| are) not a robot",
        r"(are you|you are|i'm|i am) (not )?a robot\??",
        r"not a robot",
        r"prove (that )?you('re| are) (a )?human",
        r"human verification",
        r"confirm (that )?you are (a )?human",
        r"(make sure|ensure|check) (that )?you('re| are) not a (bot|robot)",
        r"(using|use) automation tools",
        r"(are|is) (really )?you sending the requests",
        r"complete the security check",
        r"press (and|&) hold",
        r"unusual traffic (from|on) your (computer )?network",
        r"our systems have detected unusual traffic",
        r"automated (queries|requests)",
        r"enable javascript and cookies to continue",
        r"ddos protection by",
        r"this process is automatic",
        r"your browser will redirect to your requested content",
        r"just a moment\.\.\.",
        # es
        r"no (soy|eres|es) un robot",
        r"(verifica|verifique|demuestra|demuestre|confirma|confirme) que"
        r" (eres|es|no eres|no es) (un )?(humano|robot)",
        r"comprobando (su|tu) navegador",
        r"(manten|mantenga) pulsado",
        r"verificacion de seguridad",
        r"trafico inusual",
        # pt
        r"nao sou um robo",
        r"(verifique|verificar|confirme|confirmar|prove|provar)"
        r" (se |que )?(voce )?(e|nao e) (um )?(humano|robo)",
        r"(pressione|mantenha pressionado) e segure",
        r"verificando (seu|o seu) navegador",
        r"verificacao de seguranca",
        # ru
        r"я не робот",
        r"вы не робот",
        r"(подтвердите|докажите), что (вы )?(не робот|человек|запросы отправляли вы)",
        r"а не робот",
        r"похожи на автоматические",
        r"провер(ка|яем|яется) (вашего |ваш )?браузера?",
        # fr
        r"je ne suis pas un robot",
        r"vous n'etes pas un robot",
        r"(verifiez|confirmez|prouvez) que vous (etes (un )?humain|n'etes pas un robot)",
        r"verification (de votre navigateur|de securite)",
        # de
        r"ich bin kein roboter",
        r"(bestatigen|beweisen) sie, dass sie (ein mensch|kein roboter) sind",
        r"(uberprufung|prufung) ihres browsers",
        r"sicherheitsuberprufung",
        r"(dass )?sie (sind )?kein roboter( sind)?",
        r"ihr browser wird (uberpruft|gepruft)",
    ],
    BLOCKED: [
        r"access (is )?denied",
        r"access to this (page|site|website|resource) (has been|is) (denied|blocked|restricted)",
        r"you (don't|do not) have permission to access",
        r"you (have been|are|were) blocked",
        r"why have i been blocked\??",
        r"you are unable to access",
        r"request (was )?blocked",
        r"this (request|block) was (blocked|triggered)",
        r"the action you just performed triggered the security solution",
        r"using a security service to protect itself",
        r"the request could not be satisfied",
        r"your (ip|ip address|network|request) (has been|is|was) (blocked|banned|flagged)",
        r"(403|401) forbidden",
        r"(error|http) 403",
        r"error 1020",
        r"too many requests",
        r"rate limit(ed| exceeded)",
        r"you are being rate limited",
        r"(has )?banned you",
        r"error 10\d\d",
        r"(contact|contacte|contacta|entre em contato com|contactez|свяжитесь с|kontaktieren sie)"
        r" (the |o |al |el |l')?(site owner|site administrator|administrador|administrateur"
        r"|администратором|den administrator|den seitenbetreiber)( do site| del sitio| du site| сайта)?",
        r"(not|is not|isn't|currently) (available|accessible) (in|from) your (country|region|location)",
        r"unavailable in (your (country|region)|most european countries|the eu)",
        r"unavailable for legal reasons",
        r"reference #\s?[0-9a-f.]+",
        r"incident id",
        r"web application firewall",
        # es
        r"acceso (denegado|bloqueado|restringido)",
        r"no (tienes|tiene) (permiso|autorizacion) para acceder",
        r"(su|tu) (direccion )?ip (ha sido|esta|fue) bloqueada",
        r"no (esta|se encuentra) disponible en (su|tu) (pais|region)",
        r"demasiadas (solicitudes|peticiones)",
        # pt
        r"acesso (negado|bloqueado|restrito)",
        r"(voce )?nao tem permissao para acessar",
        r"(seu|o seu) (endereco )?ip (foi|esta) bloqueado",
        r"nao (esta|e) disponivel (no seu|em seu|na sua) (pais|regiao)",
        r"(muitas solicitacoes|solicitacoes em excesso|demasiados pedidos)",
        # ru
        r"доступ (запрещен|ограничен|закрыт|заблокирован)",
        r"доступ к (этому |данному )?(сайту|странице|ресурсу) (запрещен|ограничен|заблокирован|закрыт)",
        r"ваш (ip|ip-адрес|ip адрес) (был )?заблокирован",
        r"у вас нет (прав|доступа|разрешения)",
        r"недоступ(ен|на|но) в вашей? (стране|регионе)",
        r"слишком много запросов",
        # fr
        r"acces (refuse|bloque|interdit|restreint)",
        r"vous n'avez pas (l'autorisation|la permission|les droits) d'acceder",
        r"votre (adresse )?ip a ete bloquee",
        r"n'est pas disponible dans votre (pays|region)",
        r"trop de requetes",
        # de
        r"zugriff (verweigert|gesperrt|blockiert|nicht erlaubt)",
        r"zugang (verweigert|gesperrt)",
        r"sie haben keine berechtigung",
        r"ihre ip(-adresse)? wurde (gesperrt|blockiert)",
        r"in ihrem land nicht verfugbar",
        r"zu viele anfragen",
    ],
    CONSENT: [
        r"we use cookies",
        r"we and our( \d+)? (partners|vendors)",
        r"this (site|website) uses cookies",
        r"(accept|allow|reject|decline|refuse) (all|all cookies|cookies|optional cookies)",
        r"cookie (settings|preferences|policy|consent|notice|banner)",
        r"manage (cookies|preferences|options|settings|consent|my choices)",
        r"(privacy|consent) (settings|preferences|choices)",
        r"your privacy choices",
        r"we value your privacy",
        r"by clicking \"?(accept|agree|i agree|ok)",
        r"before you continue( to \w+)?",
        r"store and/or access information on a device",
        r"personali[sz]ed (ads|advertising|content)( and content)?",
        r"legitimate interest",
        r"(use|using) cookies and (similar|other) technologies",
        r"personali[sz]e (content|ads|advertising)",
        r"(stores?|uses?|places?) cookies on your (computer|device|browser)",
        r"analy[sz]e (our |site )?traffic",
        r"(i accept|i agree|show purposes|manage settings)",
        # es
        r"(utilizamos|usamos) cookies",
        r"este sitio( web)? (utiliza|usa) cookies",
        r"(aceptar|rechazar|permitir) (todas|todo|cookies|todas las cookies)",
        r"(configurar|configuracion de|politica de|ajustes de) cookies",
        r"nosotros y nuestros (socios|proveedores)",
        r"gestionar (preferencias|consentimiento|opciones)",
        r"(su|tu) privacidad es importante",
        r"personalizar (el )?contenido",
        r"analizar (el )?trafico",
        # pt
        r"(utilizamos|usamos) cookies",
        r"este (site|sitio) (usa|utiliza) cookies",
        r"(aceitar|rejeitar|recusar|permitir) (todos|tudo|cookies|todos os cookies)",
        r"(politica|definicoes|configuracoes|preferencias) de cookies",
        r"nos e os nossos parceiros",
        r"(gerenciar|gerir) (preferencias|consentimento|cookies)",
        r"sua privacidade",
        r"personalizar (o )?conteudo",
        r"analisar (o )?trafego",
        # ru
        r"мы используем (файлы )?(cookie|куки)",
        r"(сайт|этот сайт) использует (файлы )?(cookie|куки)",
        r"(принять|отклонить) (все|cookie|куки)",
        r"файл(ы|ов)? (cookie|куки)",
        r"согласие на (обработку|использование)",
        r"настройки (файлов )?(cookie|куки|конфиденциальности)",
        r"персонализ(ации|ировать|ация) (контента|рекламы)",
        # fr
        r"nous utilisons des cookies",
        r"ce site utilise des cookies",
        r"(tout accepter|tout refuser|accepter et (continuer|fermer)|refuser et continuer)",
        r"(accepter|refuser) (les cookies|tout)",
        r"continuer sans accepter",
        r"(parametrer|gerer) (les cookies|mes choix|vos choix)",
        r"vos choix (en matiere de cookies|de confidentialite)",
        r"nous et nos partenaires",
        r"politique (de cookies|des cookies|relative aux cookies)",
        r"personnaliser (les |vos )?(contenus|publicites)",
        r"mesurer l'audience",
        r"votre vie privee",
        r"avant de continuer",
        # de
        r"wir (verwenden|nutzen|setzen) cookies",
        r"diese (website|webseite|seite) (verwendet|nutzt) cookies",
        r"alle (akzeptieren|ablehnen|zulassen)",
        r"(akzeptieren|zustimmen) und weiter",
        r"(cookie|datenschutz|privatsphare)-?einstellungen",
        r"wir und unsere (partner|\d+ partner)",
        r"bevor sie fortfahren",
        r"mit werbung (weiterlesen|lesen)",
        r"(pur|werbefrei)-?abo",
        r"einwilligung (widerrufen|verwalten)",
        r"(wir benotigen|wir brauchen) ihre (zustimmung|einwilligung)",
        r"(inhalte|anzeigen)( und (inhalte|anzeigen))? (zu )?personalisieren",
        # it
        r"(utilizziamo|usiamo) (i )?cookie",
        r"accetta (tutti|tutto)",
        r"rifiuta (tutti|tutto)",
    ],
    PAYWALL: [
        r"subscribe to (continue|keep) reading",
        r"subscribe (now )?to (read|unlock|get full access)",
        r"to (continue|keep) reading,? (please )?(subscribe|sign in|log in|register|become a)",
        r"already (a subscriber|subscribed|a member)\??",
        r"(available|reserved|exclusive|only) (to|for) (paid |paying )?subscribers",
        r"for subscribers only",
        r"subscribers?[- ]only",
        r"(this|the) (article|content|story|piece) is (only )?(available|reserved|exclusive)( only)?"
        r" (to|for) (paying )?(subscribers|members)",
        r"exclusive (content )?for (subscribers|members)",
        r"become a (subscriber|member) to (read|continue)",
        r"to read this (story|article),? (please )?(subscribe|become a (subscriber|member)|sign in|log in)",
        r"unlock (this|the full) (article|story)",
        r"you('ve| have) reached your (free )?(article |monthly )?limit",
        r"free articles? (remaining|left)",
        r"(sign|log) in to (read|continue reading)",
        r"this is a premium (article|story)",
        # es
        r"suscr[ií]b(e|ete|ite|irse) para (seguir|continuar) leyendo",
        r"suscr[ií]b(ete|ite|ase) (para|y) (leer|acceder)",
        r"(contenido|articulo|nota) (exclusivo|exclusiva|solo) para suscriptores",
        r"(exclusivo|exclusiva|solo|solamente) para suscriptores",
        r"ya (eres|soy|es) suscriptor",
        r"para (seguir|continuar) leyendo",
        r"has (alcanzado|llegado al) (el )?limite",
        r"hazte suscriptor",
        # pt
        r"assine para (continuar lendo|continuar a ler|ler)",
        r"(conteudo|materia|artigo) exclusiv[oa] para assinantes",
        r"exclusivo para assinantes",
        r"(ja e|ja sou|e) assinante\??",
        r"para continuar (lendo|a ler)",
        r"(voce )?atingiu o limite",
        r"seja (um )?assinante",
        # ru
        r"(доступ(ен|на|но)? )?только (для )?подписчик(ов|ам)",
        r"оформ(ите|ить) подписку",
        r"чтобы (продолжить чтение|читать дальше|прочитать (статью|материал) полностью)",
        r"(уже есть подписка|вы уже подписчик|уже подписаны)\??",
        r"полн(ый|ая) (текст|версия) (статьи |материала )?доступ(ен|на) (только )?(по подписке|подписчикам)",
        # fr
        r"reserve aux abonnes",
        r"(cet|l') article (vous )?est reserve",
        r"abonnez-vous pour (lire|continuer|acceder)",
        r"deja abonne\s?\??",
        r"il vous reste \d+ ?% de cet article",
        r"pour lire la suite",
        r"la suite (de cet article )?est reservee",
        # de
        r"(nur|exklusiv) fur abonnenten",
        r"(bereits|schon) abonnent(in)?\??",
        r"weiterlesen mit (plus|\w+ plus|abo|z\+|sz plus|f\+)",
        r"um (diesen artikel|den artikel|weiter) (vollstandig )?zu lesen",
        r"artikel freischalten",
        r"jetzt (freischalten|abo abschliessen)",
        # it
        r"riservato agli abbonati",
        r"(sei gia|gia) abbonato\??",
    ],
    JAVASCRIPT: [
        r"(please |you (need|must|have) to )?(enable|turn on|activate|allow) javascript",
        r"javascript (is )?(required|disabled|not enabled|must be enabled|is turned off|turned off)",
        r"(requires|need|needs) javascript",
        r"javascript to run this app",
        r"browser (that supports|with) javascript",
        r"your browser does not support javascript",
        r"(please enable|enable|activez|activer|veuillez activer) js",
        r"in (your|the) browser('s)? settings",
        r"en la configuracion de (su|tu) navegador",
        r"nas configuracoes do (seu )?navegador",
        r"в настройках (вашего )?браузера",
        r"dans les parametres de votre navigateur",
        r"in (den )?(ihren )?(browser-?)?einstellungen (ihres browsers)?",
        # es
        r"(habilita|habilite|activa|active|habilitar|activar) (el )?javascript",
        r"javascript (esta )?(desactivado|deshabilitado)",
        r"(requiere|necesita|necesitas) javascript",
        # pt
        r"(habilite|ative|ativar|habilitar|ligue) (o )?javascript",
        r"javascript (esta )?desativado",
        r"(requer|precisa de) javascript",
        r"javascript (e )?necessario",
        # ru
        r"(включите|включить|разрешите) (поддержку )?javascript",
        r"javascript (отключен|выключен|не включен)",
        r"(требуется|необходим|нужен) javascript",
        r"поддержк(ой|и) javascript",
        # fr
        r"(activez|activer|autorisez) (le )?javascript",
        r"javascript est (desactive|requis|necessaire)",
        r"necessite (le )?javascript",
        # de
        r"(aktivieren sie|aktiviere|bitte aktivieren sie) (das )?javascript",
        r"javascript (aktivieren|ist deaktiviert|erforderlich|muss aktiviert)",
        r"benotigt javascript",
    ],
    ERROR: [
        r"page not found",
        r"(page|article|content|story|file|document) (was |could )?not (be )?found",
        r"(this|the) page (cannot|can't|could not|couldn't) be found",
        r"the page you('re| are| were) looking for",
        r"the (page|url|resource) you requested",
        r"(page|article|content) (does not|doesn't|no longer) exists?",
        r"(this|the) (page|article|content|story|video|link) (is|was)"
        r" (no longer available|removed|deleted|broken)",
        r"(this|the) (page|article|content|story) (has been|was) (removed|deleted|moved)",
        r"no longer available",
        r"(page|article|content|it) (has|may have) been (moved|removed|deleted|renamed)",
        r"the requested url was not found",
        r"(can't|cannot|couldn't|could not|unable to) (find|load) (the|this|that) page",
        r"(go|going) back to the previous page",
        r"please (refresh|reload)( the page)?",
        r"try again in a (few|couple of) minutes",
        r"nothing (was )?found",
        r"error 404",
        r"404 (error|not found|page)",
        r"^\s*404\s*$",
        r"(error 500|500 internal server error|internal server error|502 bad gateway"
        r"|503 service unavailable)",
        r"something went wrong",
        r"(an|unexpected) error (has )?occurred",
        r"oops",
        r"(go|return|back|take me) (back )?to (the )?home ?page",
        r"back to home",
        r"please try again( later)?",
        r"try (searching|a search)",
        # es
        r"pagina no encontrada",
        r"no (se ha encontrado|se encontro|encontramos) (la pagina|el contenido|lo que buscas)",
        r"la pagina (que buscas|que busca|que estas buscando|solicitada) no existe",
        r"(este|el) contenido (que buscas )?no existe",
        r"(esta pagina|la pagina|este contenido|esta noticia) ya no (existe|esta disponible)",
        r"ya no esta disponible",
        r"(noticia|pagina|contenido|articulo) (haya|ha) sido (retirad[oa]|eliminad[oa]|borrad[oa])",
        r"algo (salio|ha salido) mal",
        r"la pagina que (buscas|busca|has solicitado|ha solicitado) no (existe|esta disponible)",
        r"(haya|ha) sido (eliminad[ao]|retirad[ao]|borrad[ao])",
        r"la direccion no (sea|es) correcta",
        r"(esta|la) pagina no existe",
        r"(ir|volver) a la portada",
        r"(ha ocurrido|se (ha )?produjo|ocurrio) un error",
        r"volver (a la pagina de inicio|al inicio|a la portada|a la home)",
        # pt
        r"pagina nao (encontrada|existe)",
        r"a pagina que (voce )?(procura|esta procurando|solicitou) nao (existe|foi encontrada)",
        r"(esta pagina|este conteudo|o conteudo) nao existe",
        r"conteudo nao encontrado",
        r"nao esta mais disponivel",
        r"algo deu errado",
        r"ocorreu um erro",
        r"voltar (para|a) (a )?pagina inicial",
        r"erro 404",
        # ru
        r"страница не найдена",
        r"(такой|эта|запрашиваемая) страни(ца|цы) (не существует|не найдена|удалена)",
        r"(страница|материал|статья) (не существует|удален[аo]?|не найден[аo]?)",
        r"ошибка 404",
        r"что-то пошло не так",
        r"произошла ошибка",
        r"(вернуться|перейти) на главную",
        r"(она|страница|материал|статья) (была |был )?(удален[аo]?|перемещен[аo]?)",
        r"на главную страницу",
        # fr
        r"page (introuvable|non trouvee)",
        r"(cette page|la page que vous (recherchez|cherchez)|la page demandee) n'existe (pas|plus)",
        r"n'existe plus",
        r"(est )?introuvable",
        r"la page (que vous avez demandee|demandee)",
        r"n'est plus disponible",
        r"une erreur (s'est produite|est survenue)",
        r"quelque chose s'est mal passe",
        r"erreur 404",
        r"oups",
        r"(retour|revenir) (a l'accueil|a la page d'accueil)",
        # de
        r"seite nicht gefunden",
        r"die (angeforderte|gesuchte|aufgerufene) seite (existiert nicht|wurde nicht gefunden"
        r"|ist nicht (mehr )?verfugbar|konnte nicht gefunden werden)",
        r"(diese )?seite existiert nicht( mehr)?",
        r"nicht mehr verfugbar",
        r"seite (leider )?(konnte )?nicht (gefunden|finden)",
        r"(gesuchte|angeforderte) seite",
        r"etwas ist schiefgelaufen",
        r"ein fehler ist aufgetreten",
        r"fehler 404",
        r"hoppla",
        r"zuruck zur startseite",
        r"zur startseite",
        # it
        r"pagina non trovata",
    ],
}

# What a page says only about itself ("our website is unavailable in..."): decisive where there is no real
# lead, even when the rest of the little text there is outweighs it. Paywall notices all count as such.
_DECISIVE_PHRASES: dict[str, list[str]] = {
    CAPTCHA: [
        r"checking your browser before accessing",
        r"needs to review the security of your connection",
        r"(verify|confirm|prove) (that )?you are (a )?human",
        r"(confirme|confirma|demuestre|demuestra) que (no )?(es|eres) (un )?(humano|robot)",
        r"(confirme|prove) que (voce )?(e|nao e) (um )?(humano|robo)",
        r"подтвердите, что (вы )?(не робот|человек|запросы отправляли вы)",
        r"(confirmez|prouvez) que vous (etes (un )?humain|n'etes pas un robot)",
        r"bestatigen sie, dass sie (ein mensch|kein roboter) sind",
    ],
    BLOCKED: [
        r"(our|this) (web ?site|site|content|service) is (currently )?(unavailable|not available) in",
        r"you (don't|do not) have permission to access",
        r"you have been blocked",
        r"your ip( address)? has been (blocked|banned)",
        r"(nuestro|este) (sitio|contenido)( web)? no (esta|se encuentra) disponible en",
        r"(nosso|este) (site|conteudo) nao (esta|e) disponivel",
        r"(наш|этот) (сайт|контент|материал) (недоступен|не доступен) в",
        r"(notre|ce) (site|contenu) n'est pas (disponible|accessible) dans",
        r"(unsere|diese) (website|seite|inhalte?) (ist|sind) in ihrem land nicht",
    ],
    JAVASCRIPT: [
        r"you need to enable javascript to run this app",
        r"(please )?enable javascript (in your browser )?to (view|use|continue|see|access)"
        r" (this|the) (site|page|website)",
    ],
    ERROR: [
        r"the page you('re| are) looking for"
        r" (does not|doesn't|no longer|could not|couldn't|can't|cannot|may have)",
        r"la pagina que (buscas|busca|estas buscando) no existe",
        r"a pagina que (voce )?(procura|esta procurando) nao existe",
        r"страница, которую вы (ищете|запрашиваете), не (существует|найдена)",
        r"la page que vous (recherchez|cherchez) n'existe (pas|plus)",
        r"die (seite|von ihnen aufgerufene seite), die sie (suchen|aufgerufen haben),"
        r" (existiert nicht|wurde nicht gefunden)",
    ],
}

# Whole titles, or whole segments of one ("404 - Page not found | Example News").
_TITLE_PHRASES: dict[str, list[str]] = {
    CAPTCHA: [
        r"just a moment\.*",
        r"attention required!?",
        r"(are you|you are|i am|i'm) (not )?a robot\??",
        r"captcha",
        r"security check",
        r"(human|bot|browser) (verification|check)",
        r"verify(ing)? (that )?you are (a )?human",
        r"one more step",
        r"ddos-guard",
        r"(un|um|ein|einen|un) moment[oe]?(\.\.\.)?",
        r"un instant(\.\.\.)?",
        r"один момент(\.\.\.)?",
        r"вы не робот\??",
        r"ой!",
        r"verificacion de seguridad",
        r"verificacao de seguranca",
        r"sicherheitsuberprufung",
    ],
    BLOCKED: [
        r"access denied",
        r"(error )?40[13]( forbidden)?",
        r"forbidden",
        r"request (rejected|blocked)",
        r"(sorry, )?you have been blocked",
        r"access to this page has been denied\.?",
        r"the request could not be satisfied",
        r"(error )?429( too many requests)?",
        r"too many requests",
        r"(error )?451( unavailable for legal reasons)?",
        r"unavailable for legal reasons",
        r"acceso (denegado|bloqueado)",
        r"acesso (negado|bloqueado)",
        r"доступ (запрещен|ограничен|заблокирован)",
        r"acces (refuse|interdit|bloque)",
        r"zugriff (verweigert|gesperrt)",
    ],
    CONSENT: [
        r"before you continue( to [\w .]+)?",
        r"cookie (consent|settings|preferences|notice)",
        r"(privacy|consent) (settings|preferences|consent|center|centre)",
        r"we value your privacy",
        r"antes de continuar",
        r"avant de continuer",
        r"bevor sie fortfahren",
        r"(datenschutz|cookie)-?einstellungen",
        r"(configuracion|preferencias) de (privacidad|cookies)",
        r"согласие на (использование|обработку)( файлов)?( cookie)?",
    ],
    PAYWALL: [
        r"subscribe( to read| to continue reading)?",
        r"subscriber[- ]only( content)?",
        r"suscr[ií]bete",
        r"assine",
        r"abonnez-vous",
        r"jetzt abonnieren",
        r"оформите подписку",
    ],
    JAVASCRIPT: [
        r"(please )?(enable|turn on) javascript",
        r"javascript (is )?(required|disabled|not enabled)",
        r"javascript erforderlich",
        r"(active|activa|habilite) (el )?javascript",
        r"включите javascript",
        r"activez javascript",
    ],
    ERROR: [
        r"(error |http )?404( error| not found| page)?",
        r"(error |http )?(500|502|503)"
        r"( internal server error| bad gateway| service (temporarily )?unavailable)?",
        r"(page|content|article) not found",
        r"not found",
        r"nothing found",
        r"internal server error",
        r"service (temporarily )?unavailable",
        r"bad gateway",
        r"error",
        r"oops!?",
        r"something went wrong",
        r"pagina no encontrada",
        r"(este )?contenido no (existe|disponible|encontrado)",
        r"no encontrado",
        r"algo salio mal",
        r"pagina nao encontrada",
        r"conteudo (nao encontrado|indisponivel)",
        r"erro( 404)?",
        r"страница не найдена",
        r"(ошибка|error)( 404)?",
        r"не найдено",
        r"page (introuvable|non trouvee)",
        r"erreur( 404)?",
        r"seite nicht gefunden",
        r"fehler( 404)?",
        r"pagina non trovata",
    ],
}

# Machinery only challenge and block pages carry, as lower-case substrings (a substring test over the HTML
# prefix is a fraction of a millisecond; a case-insensitive regex alternation is tens). Cloudflare injects
# /cdn-cgi/challenge-platform/scripts/jsd/ into ordinary pages too (seven pages of the fundus corpus), so only
# its challenge-page forms count.
_HTML_STRONG: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        CAPTCHA,
        (
            "_cf_chl_opt",  # Cloudflare's "Just a moment..." interstitial
            "cf-browser-verification",
            "challenge-form",
            "/orchestrate/chl_page",
            "/orchestrate/managed/",
            "/orchestrate/jsch/",
            "/orchestrate/captcha/",
            "captcha-delivery.com",  # DataDome's challenge
            'id="px-captcha"',  # PerimeterX / HUMAN's "press and hold"
            "sec-if-cpt-container",  # Akamai's interstitial
        ),
    ),
    (
        BLOCKED,
        (
            "incapsula incident id",  # Imperva's block page
            "sucuri website firewall",
            "errors.edgesuite.net",  # Akamai's "Access Denied ... Reference #"
            "cf-error-details",  # Cloudflare's error pages (1020 "you have been blocked", ...)
        ),
    ),
)

# Markers ordinary pages carry as well (a reCAPTCHA on the comment form, a consent framework, an empty paywall
# container): they only say what a page that shows next to nothing is (see _BARE_CHARS).
_HTML_WEAK: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        CAPTCHA,
        (
            "g-recaptcha",
            "h-captcha",
            "cf-turnstile",
            "recaptcha/api.js",
            "hcaptcha.com/1/api.js",
            "challenges.cloudflare.com/turnstile",
            "smartcaptcha",
            "captcha.awswaf.com",
            "ddos-guard",
        ),
    ),
    (PAYWALL, ("paywall", "pay-wall", "subscriber-only", "piano-offer", "tp-modal")),
    (
        CONSENT,
        (
            "onetrust",
            "didomi",
            "cookiebot",
            "quantcast",
            "qc-cmp",
            "sourcepoint",
            "sp_message",
            "usercentrics",
            "fundingchoicesmessages",
            "fc-consent-root",
            "consentmanager.net",
            "cookielaw.org",
            "iubenda",
        ),
    ),
)
# A noscript that asks for JavaScript (not just for the comments), or an empty single-page-app root.
_NOSCRIPT_JS = re.compile(
    r"<noscript[^>]*>[^<]{0,200}(?:<[^>]*>[^<]{0,200}){0,3}?"
    r"(?:enable|turn on|activate|activ|habilit|включите|aktivieren)[^<]{0,40}javascript"
    r"(?![^<]{0,80}(?:comment|disqus|kommentar|comentario))"
)
_EMPTY_APP = re.compile(r"<div id=[\"'](?:root|app|__next|__nuxt)[\"']>\s*</div>")
_NOT_FREE = re.compile(r"isaccessibleforfree[\"']?\s*[:=]\s*[\"']?false")
_RAW_TITLE = re.compile(r"<title[^>]*>([^<]{1,300})</title>", re.IGNORECASE)
_INVISIBLE_HTML = re.compile(
    r"<(script|style|svg|template|head)\b[^>]*>[\s\S]*?</\1\s*>|<!--[\s\S]*?-->", re.IGNORECASE
)
_BLOCK_TAG = re.compile(
    r"</?(p|div|li|ul|ol|h[1-6]|br|hr|tr|td|th|table|section|article|header|footer|nav|main|aside|form|button"
    r"|noscript|label|blockquote|dd|dt|figure|figcaption|iframe|body|html)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")
# Between a title and the site's name. Not ":" (headlines use it: "Page not found: why links die").
_SEPARATORS = re.compile(r"\s+[|\-–—·•»]+\s+|\s*[|·•]\s*")
_SPACES = re.compile(r"\s+")

# Reporting: news prose that quotes a block page ("the page read 'Access denied', officials said on Monday")
# is not one. Block pages never report what someone said, nor on which day of the week.
_REPORTING = _phrases(
    [
        r"(said|says|told|announced|reported|explained|added|ruled"
        r"|according to (the|a|its|his|her|their) \w+)",
        r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)",
        r"(lunes|martes|miercoles|jueves|viernes|sabado)",
        r"(segunda|terca|quarta|quinta|sexta)-feira",
        r"(в|во) (понедельник|вторник|среду|четверг|пятницу|субботу|воскресенье)",
        r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)",
        r"(montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag)",
        r"(dijo|afirmo|aseguro|declaro|informo|explico|anadio|senalo|denunciaron|han denunciado)",
        r"(disse|afirmou|declarou|informou|explicou|acrescentou|segundo (o|a|os|as) \w+)",
        r"(заявил|сообщил|рассказал|отметил|пояснил|объяснил)(а|и|о)?",
        r"по (словам|данным|информации)",
        r"(a|ont) (declare|affirme|annonce|indique|explique|precise)",
        r"(sagte|sagten|erklarte|erklarten|berichtete|kundigte|hiess es|teilte)",
    ]
)

# Words of a site speaking to its reader or as itself, in the six languages.
_ADDRESS = _phrases(
    [
        r"(you|your|yours|please|we|we're|our|us)",
        r"(usted|ustedes|tu|tus|por favor|su (navegador|dispositivo|red|conexion|direccion|ip|pais))",
        r"(nosotros|nuestro|nuestra|nuestros|nuestras|utilizamos|usamos|hemos)",
        r"(voce|voces|seu|sua|por favor|nos|nosso|nossa|nossos|nossas)",
        # imperatives: "Verifique o endereco digitado", "Intente de nuevo" (es and pt forms)
        r"(verifique|tente|intente|compruebe|clique|haga clic)",
        r"(вы|вас|вам|ваш|ваша|ваше|ваши|вашего|вашей|пожалуйста|мы|наш|наша|наше|наши|нам)",
        r"(vous|votre|vos|veuillez|nous|notre|nos)",
        r"(bitte|ihr|ihre|ihrem|ihren|ihrer|ihres|wir|uns|unser|unsere|unseren|unserer)",
    ]
)
# Quoted spans in folded text (typographic quotes are folded to " and '); an apostrophe in a word is no quote.
_QUOTED = re.compile(r"\"[^\"\n]{1,100}\"|(?<!\w)'[^'\n]{1,100}'(?!\w)")

_BODY_RE = {kind: _phrases(items) for kind, items in _BODY_PHRASES.items()}
# Running ~100 alternatives at every position of a text costs microseconds per character; a substring test
# costs next to nothing. So each kind also has needles: literal strings one of which every match of one of its
# phrases contains (derived from the phrases themselves; None where one cannot be derived). Text that holds
# none of a kind's needles holds none of its phrases.
_SRE: Any = importlib.import_module("re._parser")  # the stdlib's own regex parser, to read the phrases


def _needles(source: str) -> frozenset[str] | None:
    """Literal strings (3+ characters) one of which every match of the regex `source` contains, or None."""
    try:
        return _required(list(_SRE.parse(source)))
    except Exception:  # a parser that changed shape: no needles, the phrases are simply always tried
        return None


def _required(sequence: list[tuple[Any, Any]]) -> frozenset[str] | None:
    best: frozenset[str] | None = None

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if (
            found
            and min(map(len, found)) >= 3
            and (best is None or min(map(len, found)) > min(map(len, best)))
        ):
            best = found

    run = ""
    for op, value in sequence:
        name = str(op)
        if name == "LITERAL":
            run += chr(value)
            continue
        consider(frozenset([run]) if run else None)
        run = ""
        if name == "SUBPATTERN":
            consider(_required(list(value[-1])))
        elif name == "BRANCH":
            branches = [_required(list(branch)) for branch in value[1]]
            if all(branches):
                consider(frozenset().union(*(b for b in branches if b)))
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and value[0] >= 1:
            consider(_required(list(value[2])))
    consider(frozenset([run]) if run else None)
    return best


def _kind_needles(items: list[str]) -> frozenset[str] | None:
    found: set[str] = set()
    for item in items:
        needles = _needles(_fold(item))
        if needles is None:
            return None
        found |= needles
    return frozenset(found)


_BODY_NEEDLES = {kind: _kind_needles(items) for kind, items in _BODY_PHRASES.items()}
_DECISIVE_RE = {kind: _phrases(items) for kind, items in _DECISIVE_PHRASES.items()}
_TITLE_RE = {kind: _titles(items) for kind, items in _TITLE_PHRASES.items()}
# Ties between kinds go to the first: a Cloudflare page asking to "enable JavaScript and cookies to continue"
# is a bot check before it is a JavaScript notice.
_PRIORITY = (CAPTCHA, BLOCKED, CONSENT, PAYWALL, JAVASCRIPT, ERROR)
_STATUS = {401: PAYWALL, 402: PAYWALL, 403: BLOCKED, 429: BLOCKED, 451: BLOCKED}


def not_an_article(
    article: Article | None, html: str | None = None, status: int = 200, min_chars: int = MIN_CHARS
) -> str | None:
    """None when `article` is an article worth filing; else why not, as a short reason.

    `html` is the decoded page (only a bounded prefix is read), `status` its HTTP status, `min_chars` the
    shortest body (Article.body, in characters) that counts as an article.
    """
    if status >= 400:
        return f"{_STATUS.get(status, ERROR)} (HTTP {status})"
    body_chars = len(article.body) if article else 0
    if body_chars >= _LONG_BODY:
        return None  # real prose: whatever the page also says, there is an article in it
    head = html[:_HTML_PREFIX] if html else ""
    # Lower-casing a big page costs more than all the rest: only pages with little text need it.
    lower = head.lower() if article is None or body_chars < max(_SHORT_TEXT, min_chars) else ""

    # The machinery of a challenge or block page outranks what its title says ("Before we continue...").
    if article is None or body_chars < _SHORT_TEXT:
        kind = _html_kind(lower, _HTML_STRONG)
        if kind:
            return kind

    titles = [article.title] if article else []
    raw_title = _RAW_TITLE.search(head, 0, _TITLE_WITHIN)
    if raw_title:
        titles.append(html_lib.unescape(raw_title.group(1)))
    for title in titles:
        kind = _title_kind(title)
        if kind:
            return kind

    blocks: Sequence[str] = article.paragraphs if article else _visible_blocks(head)
    kind = _dominant_kind(blocks, min_chars)
    if kind:
        return kind

    if article is None or body_chars < min_chars:
        # Rejected anyway. Any marker in the article's text says why ("Please try again later."); not one in
        # the page's menus and footers (every European page links to its "Cookie settings").
        kind = _any_kind(blocks) if article else None
        if kind:
            return kind
        # A page that shows next to nothing is what its machinery makes it: a captcha widget first, then an
        # app that needs JavaScript, then paywall and consent machinery. On a page with menus and links
        # around a short text, these are furniture (a reCAPTCHA under the comment form).
        visible = blocks if article is None else _visible_blocks(head)
        if sum(map(len, visible)) < _BARE_CHARS:
            kind = (
                _html_kind(lower, _HTML_WEAK[:1])
                or _needs_javascript(lower)
                or _not_free(lower)
                or _html_kind(lower, _HTML_WEAK[1:])
            )
            if kind:
                return kind
    if article is None:
        return NO_TEXT
    if body_chars < min_chars:
        return f"{TOO_SHORT} ({body_chars} characters, minimum {min_chars})"
    return None


def _html_kind(lower_html: str, markers: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    for kind, needles in markers:
        if any(needle in lower_html for needle in needles):
            return kind
    return None


def _needs_javascript(lower_html: str) -> str | None:
    if ("<noscript" in lower_html and _NOSCRIPT_JS.search(lower_html)) or _EMPTY_APP.search(lower_html):
        return JAVASCRIPT
    return None


def _not_free(lower_html: str) -> str | None:
    # Only a refinement: publishers set "isAccessibleForFree": false on free articles too (The Intercept,
    # Rolling Stone and Euronews in the fundus corpus), so it cannot reject a short article by itself.
    if "isaccessibleforfree" in lower_html and _NOT_FREE.search(lower_html):
        return PAYWALL
    return None


def _title_kind(title: str) -> str | None:
    """The kind whose title pattern is the whole title, or a whole segment of it."""
    folded = _fold(title).strip()
    if not folded:
        return None
    segments = [folded, *(s.strip() for s in _SEPARATORS.split(folded) if s.strip())]
    for kind in _PRIORITY:
        pattern = _TITLE_RE[kind]
        if any(pattern.fullmatch(segment) for segment in segments):
            return kind
    return None


def _dominant_kind(blocks: Sequence[str], min_chars: int) -> str | None:
    """The kind of marker blocks that dominate the text, or a paywall over no real lead; else None."""
    marker: dict[str, int] = {}
    other_chars = other_paragraphs = 0
    for block in blocks:
        kind = _block_kind(block)
        if kind:
            marker[kind] = marker.get(kind, 0) + len(block)
        else:
            other_chars += len(block)
            other_paragraphs += len(block) >= _PARAGRAPH_CHARS
        if other_chars >= max(min_chars, _LEAD_CHARS) or (
            other_paragraphs >= _LEAD_PARAGRAPHS and other_chars >= min_chars
        ):
            return None  # a real lead: whatever the rest says, there is an article here
    if marker:
        # Ties go to the first kind in _PRIORITY (max keeps the first of equal values).
        kind = max(_PRIORITY, key=lambda k: marker.get(k, 0))
        if sum(marker.values()) > other_chars:
            return kind
        if PAYWALL in marker:
            return PAYWALL  # a paywall notice under a lead too short to be one
        folded = _fold("\n".join(blocks))
        for kind, pattern in _DECISIVE_RE.items():
            if kind in marker and pattern.search(folded):
                return kind
    return None


def _any_kind(blocks: Sequence[str]) -> str | None:
    """The kind with the most markers outside quotes in text that reports nothing (text too short to file)."""
    counts: dict[str, int] = {}
    for block in blocks:
        folded = _fold(block)
        if _REPORTING.search(folded):
            continue
        for kind, spans in _marker_spans(folded).items():
            counts[kind] = counts.get(kind, 0) + len(spans)
    return max(_PRIORITY, key=lambda k: counts.get(k, 0)) if counts else None


def _marker_spans(folded: str) -> dict[str, list[tuple[int, int]]]:
    """Each kind's marker matches outside quotation marks."""
    quoted = [m.span() for m in _QUOTED.finditer(folded)] if '"' in folded or "'" in folded else []
    found: dict[str, list[tuple[int, int]]] = {}
    for kind in _PRIORITY:
        needles = _BODY_NEEDLES[kind]
        if needles is not None and not any(needle in folded for needle in needles):
            continue
        spans = [
            m.span()
            for m in _BODY_RE[kind].finditer(folded)
            if not any(start <= m.start() and m.end() <= end for start, end in quoted)
        ]
        if spans:
            found[kind] = spans
    return found


def _block_kind(block: str) -> str | None:
    """The kind of marker a block is made of, if it is a marker block (see _LABEL_CHARS); else None."""
    folded = _fold(block)
    best: str | None = None
    best_spans: list[tuple[int, int]] = []
    for kind, spans in _marker_spans(folded).items():
        if len(spans) > len(best_spans):  # ties: the first kind in _PRIORITY
            best, best_spans = kind, spans
    if best is None or _REPORTING.search(folded):
        return None
    size, hits = len(folded), len(best_spans)
    if size <= _LABEL_CHARS or (hits >= 2 and hits * _DENSITY >= size):
        return best
    if hits == 1 and size <= _SENTENCE_CHARS:
        start, end = best_spans[0]
        if _ADDRESS.search(folded[:start] + " " + folded[end:]):
            return best
    return None


def _visible_blocks(html: str) -> list[str]:
    """The page's visible text, one block per block-level element (noscript included: it speaks to us)."""
    text = _INVISIBLE_HTML.sub("\n", html)
    text = _TAG.sub(" ", _BLOCK_TAG.sub("\n", text))
    blocks = (_SPACES.sub(" ", html_lib.unescape(line)).strip() for line in text.split("\n"))
    return [block for block in blocks if block]
